"""Dataset adapters: each turns a dataset (real or synthetic) into the processed layout and common metadata."""
