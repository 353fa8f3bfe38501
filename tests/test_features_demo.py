"""The documented feature workflow on data laid out as ``vlm3r demo`` writes it (videos named from the working
directory, ``data.video_folder: .``): ``vlm3r features extract --videos . --data <train json>`` writes every file
that ``vlm3r train ... --set data.features=<dir>`` then requires; failed starts leave nothing to --overwrite."""

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import write_video
from typer.testing import CliRunner

from vlm3r.cli.main import app

NAMES = ("demo_out/synthetic/videos/train/a.mp4", "demo_out/synthetic/videos/train/b.mp4")
UNUSED = "demo_out/synthetic/videos/val/c.mp4"  # below the video folder, named by no sample


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "100000"})


@pytest.fixture
def demo_layout(tmp_path, monkeypatch):
    """The working directory holds the videos as the demo names them and train.json (three samples, two videos)."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for name in (*NAMES, UNUSED):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        write_video(tmp_path / name, rng.integers(0, 255, (12, 48, 64, 3), dtype=np.uint8))
    samples = [{"id": f"s{k}", "video": name, "conversations": [{"from": "human", "value": "<image>\nHow many?"},
                                                                 {"from": "gpt", "value": str(k)}]}
               for k, name in enumerate((NAMES[0], NAMES[1], NAMES[0]))]
    (tmp_path / "train.json").write_text(json.dumps(samples))
    return tmp_path


def test_features_of_the_training_data_are_found_by_training(demo_layout):
    from vlm3r.training.config import load_train_config
    from vlm3r.training.trainer import Trainer

    # the tiny recipe's CUT3R, as a run writes it (the same bytes for every run of model.init_seed 0)
    Trainer(load_train_config("tiny", ["data.train=train.json", "run.output_dir=first"])).setup()
    result = run("features", "extract", "--videos", ".", "--data", "train.json", "--cut3r", "first/base/cut3r.pth",
                 "--frames", "4", "--image-size", "84", "--cut3r-size", "96", "--out", "features")
    assert result.exit_code == 0, result.output
    assert "2 written, 0 already present, 0 failed" in result.stdout
    written = sorted(str(p.relative_to("features")) for p in Path("features").rglob("*.pt"))
    assert written == [f"{name}.pt" for name in NAMES]  # exactly the videos the data names, at their own paths
    result = run("train", "--config", "tiny", "--set", "data.train=train.json", "--set", "data.features=features",
                 "--set", "data.require_features=true", "--set", "optim.max_steps=1", "--set",
                 "run.output_dir=second")
    assert result.exit_code == 0, result.output  # require_features: a missing file would have stopped the setup
    assert "no feature file" not in result.output


def test_a_failed_start_leaves_nothing_behind(demo_layout):
    """A bad --cut3r or --data for extraction, bad data for training: the next try needs no --overwrite."""
    (demo_layout / "bad.pth").write_bytes(b"not a checkpoint")
    result = run("features", "extract", "--videos", ".", "--data", "train.json", "--cut3r", "bad.pth", "--out",
                 "features")
    assert result.exit_code == 1 and "bad.pth: not readable as a torch checkpoint" in result.stderr
    result = run("features", "extract", "--videos", ".", "--data", "absent.json", "--cut3r", "bad.pth", "--out",
                 "features")
    assert result.exit_code == 1 and result.stderr.startswith("error: absent.json: ")  # read before CUT3R
    assert not Path("features").exists()
    samples = json.loads(Path("train.json").read_text())
    samples[1]["video"] = "demo_out/missing.mp4"
    Path("broken.json").write_text(json.dumps(samples))
    Path("empty").mkdir()
    for out in ("run", "empty"):  # a folder the start makes, and one that was there (empty) before
        result = run("train", "--config", "tiny", "--set", "data.train=broken.json", "--set", f"run.output_dir={out}")
        assert result.exit_code == 1 and "sample 1 (s1)" in result.stderr, result.output
    assert not Path("run").exists() and list(Path("empty").iterdir()) == []
