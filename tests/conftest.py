"""Shared fixtures: a small synthetic dataset generated once per test session."""

from pathlib import Path

import pytest

from vlm3r.datasets.synthetic.generate import SynthConfig, generate_dataset

SMALL = SynthConfig(num_frames=8, video_frames=48, frame_size=(160, 120), video_size=(96, 72))
SEED = 11
NUM_SCENES = 3


@pytest.fixture(scope="session")
def small_synthetic(tmp_path_factory) -> Path:
    """Three small synthetic scenes (8 frames of 160x120, a 48-frame video)."""
    root = tmp_path_factory.mktemp("synthetic")
    generate_dataset(root, NUM_SCENES, SEED, SMALL)
    return root


FULL_LENGTH_TINY = SynthConfig(num_frames=32, video_frames=240, frame_size=(64, 48), video_size=(32, 24))
QA_SCENES = 5


@pytest.fixture(scope="session")
def qa_synthetic(tmp_path_factory) -> Path:
    """Five scenes with the default 32 of 240 frames (so timing-based tasks work) at a tiny resolution."""
    root = tmp_path_factory.mktemp("qa_synthetic")
    generate_dataset(root, QA_SCENES, 4, FULL_LENGTH_TINY)
    return root
