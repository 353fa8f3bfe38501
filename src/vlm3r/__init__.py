"""vlm3r: VLM-3R end to end, from 3D scene data to spatial question answering on ordinary video."""

__version__ = "0.1.0"
