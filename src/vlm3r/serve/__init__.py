"""``vlm3r serve``: VLM-3R behind an OpenAI-compatible HTTP API (see ``vlm3r.serve.app``)."""
