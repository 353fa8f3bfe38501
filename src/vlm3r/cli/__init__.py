"""The ``vlm3r`` command line."""
