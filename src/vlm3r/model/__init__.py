"""The VLM-3R model and its parts."""
