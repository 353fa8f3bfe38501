"""Training that is not watched on a terminal still says how far it is (plain lines), and ``optim.max_steps`` trains
exactly that many optimizer steps: a quick try of a recipe."""

import json
import re

import pytest
from typer.testing import CliRunner

from vlm3r.cli.main import app

CLOCK = r"\d+:\d\d:\d\d"


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "100000"})


@pytest.fixture(scope="module")
def two_samples(small_synthetic, tmp_path_factory):
    """Two conversations about two of the small synthetic videos (absolute paths: data.video_folder is '.')."""
    videos = sorted(small_synthetic.rglob("*.mp4"))[:2]
    samples = [{"id": f"s{k}", "video": str(video),
                "conversations": [{"from": "human", "value": "<image>\nHow many chairs?"},
                                  {"from": "gpt", "value": str(k + 1)}]} for k, video in enumerate(videos)]
    path = tmp_path_factory.mktemp("progress") / "train.json"
    path.write_text(json.dumps(samples))
    return path


def test_training_prints_plain_progress_lines_and_stops_at_max_steps(two_samples, tmp_path, monkeypatch):
    """Not a terminal (CliRunner captures the output): a line at the first and the last step, none between when
    the interval has not passed; 3 optimizer steps of 2 per epoch: past optim.epochs (1, 2 steps) and ending
    inside the second epoch."""
    import vlm3r.utils.progress as progress

    monkeypatch.setattr(progress, "PLAIN_PROGRESS_EVERY_S", 1e9)  # only the first and the last step are due
    out = tmp_path / "run"
    result = run("train", "--config", "tiny", "--set", f"data.train={two_samples}", "--set", "optim.max_steps=3",
                 "--set", "optim.epochs=1", "--set", f"run.output_dir={out}", "--set", "run.save_every=1000")
    assert result.exit_code == 0, result.output
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [(row["step"], row["epoch"]) for row in log] == [(1, 0), (2, 0), (3, 1)]
    assert json.loads((out / "trainer_state.json").read_text())["total_steps"] == 3
    lines = result.stdout.splitlines()  # (DeepSpeed, when installed, may log a line of its own on import)
    steps = [line for line in lines if line.startswith("step ")]
    assert len(steps) == 2 and lines[-1] == f"wrote {out}"
    for line, step in zip(steps, (1, 3)):
        loss = next(row["loss"] for row in log if row["step"] == step)
        assert re.fullmatch(rf"step {step}/3  loss {loss:.4f}  elapsed {CLOCK}  left {CLOCK}", line), line
    assert steps[1].endswith("left 0:00:00")


def test_plain_progress_lines_come_at_the_interval():
    from vlm3r.utils.progress import PlainProgress

    times = iter([100.0, 104.0, 120.0, 135.0, 150.0, 166.0, 170.0])  # the start, then each step's end
    lines = PlainProgress(total=6, every_s=30.0, clock=lambda: next(times))
    printed = [lines.update(step, loss=1.0 / step) for step in range(1, 7)]
    # step 1 (the first), step 3 (31 s after step 1's line), step 5 (31 s after step 3's), step 6 (the last);
    # time left: elapsed / steps done x steps to go (step 5: 66 / 5 x 1 = 13.2 s)
    assert printed == ["step 1/6  loss 1.0000  elapsed 0:00:04  left 0:00:20", None,
                       "step 3/6  loss 0.3333  elapsed 0:00:35  left 0:00:35", None,
                       "step 5/6  loss 0.2000  elapsed 0:01:06  left 0:00:13",
                       "step 6/6  loss 0.1667  elapsed 0:01:10  left 0:00:00"]


def test_max_steps_is_checked(two_samples):
    result = run("train", "--config", "tiny", "--set", f"data.train={two_samples}", "--set", "optim.max_steps=0")
    assert result.exit_code == 1
    assert result.stderr == ("error: --set optim.max_steps=0: optim.max_steps: must be at least 1 (optimizer steps), "
                             "or null to train optim.epochs epochs, got 0\n")
