"""The one frame-sampling rule of VLM-3R: ``num_frames`` indices spread by ``np.linspace`` over a sequence (all
of them when it is shorter). The model samples its input this way, and every dataset samples its annotated
frames this way, so "frame k of N" means the same thing on both sides."""

from __future__ import annotations

import numpy as np

NUM_FRAMES = 32  # frames per video: the benchmarks', the training script's and every dataset's annotated count
SIGLIP_IMAGE_SIZE = 384  # px, the SigLIP so400m-patch14-384 input (27 x 27 patches of 14)
CUT3R_IMAGE_SIZE = 432  # px, fixed in the official spatial tower's input preparation (27 x 27 patches of 16)


def linspace_indices(total: int, num_frames: int) -> np.ndarray:
    """Indices into a sequence of ``total`` items; strictly increasing (the step is at least 1)."""
    return np.linspace(0, total - 1, num_frames, dtype=int) if total > num_frames else np.arange(total)
