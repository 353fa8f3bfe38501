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


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The tiny model written by ``save_pretrained`` (with the bundled tokenizer)."""
    from helpers import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="session")
def vsi_questions(qa_synthetic, tmp_path_factory) -> Path:
    """VSI-Bench questions about three of the QA scenes' videos, one per task and scene."""
    from vlm3r.qa.generate import generate, load_scenes
    from vlm3r.qa.record import write_qa_jsonl
    from vlm3r.qa.tasks import select_tasks

    records, _ = generate(load_scenes(qa_synthetic), select_tasks("vsi"), seed=0, per_scene=1)
    videos = sorted({r.video_path for r in records})[:3]
    path = tmp_path_factory.mktemp("qa") / "qa.jsonl"
    write_qa_jsonl(path, [r for r in records if r.video_path in videos])
    return path


@pytest.fixture(scope="session")
def plain_eval_run(tiny_model, vsi_questions, qa_synthetic, tmp_path_factory) -> Path:
    """An uninterrupted ``vlm3r eval run`` of the tiny model on those questions: what every other run must equal."""
    from helpers import eval_args
    from typer.testing import CliRunner

    from vlm3r.cli.main import app

    out = tmp_path_factory.mktemp("runs") / "plain"
    result = CliRunner().invoke(app, [str(a) for a in eval_args(tiny_model, vsi_questions, qa_synthetic, out)])
    assert result.exit_code == 0, result.output
    return out
