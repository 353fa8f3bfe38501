"""lmms-eval integration: the ``vlm3r`` model (entry point ``lmms_eval.models``) and offline task definitions.

Needs lmms-eval installed (``pip install --no-deps lmms-eval==0.7.3`` plus its light dependencies; see
docs/evaluation.md). Nothing here is imported by the rest of vlm3r.
"""
