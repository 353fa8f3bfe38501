"""Entry-point payload registering the ``vlm3r`` model with lmms-eval's registry."""

from lmms_eval.models.registry_v2 import ModelManifest

MANIFEST = ModelManifest(model_id="vlm3r", simple_class_path="vlm3r.eval.lmms.model.Vlm3rLmms")
