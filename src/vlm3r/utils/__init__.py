"""Small shared helpers (file writing, logging)."""
