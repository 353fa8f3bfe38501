"""CUT3R, the recurrent 3D reconstruction model VLM-3R uses as its frozen spatial encoder."""

from vlm3r.model.cut3r.config import Cut3rConfig
from vlm3r.model.cut3r.heads import HeadOutputs
from vlm3r.model.cut3r.loading import (Cut3rCheckpointError, load_cut3r, read_architecture_file, read_checkpoint,
                                       read_cut3r_weights)
from vlm3r.model.cut3r.model import Cut3r, Cut3rState

__all__ = ["Cut3r", "Cut3rCheckpointError", "Cut3rConfig", "Cut3rState", "HeadOutputs", "load_cut3r",
           "read_architecture_file", "read_checkpoint", "read_cut3r_weights"]
