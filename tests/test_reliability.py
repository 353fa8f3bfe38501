"""Bad inputs and interruptions, command by command (docs/reliability.md lists them): nothing silently wrong,
nothing lost, nothing left running. Interruptions use real signals on real ``vlm3r`` processes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import default_sigint
from typer.testing import CliRunner

from vlm3r.cli.main import app

STOP_WITHIN_S = 1.0  # an interrupted command must be gone this soon, its workers too


def run_cli(*args, **kwargs):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "240"}, **kwargs)


# ---------------------------------------------------------------------------------------------- files
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_get_the_permissions_open_gives(tmp_path, umask, mode):
    from vlm3r.utils.fileio import atomic_write_text

    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        with open(tmp_path / "plain.txt", "w") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == mode == (tmp_path / "plain.txt").stat().st_mode & 0o777


def test_file_digests_follow_the_content(tmp_path):
    """The video caches' key: a file replaced by other bytes of the same size and modification time, or renamed
    over, is a new digest; an untouched old file is read once."""
    import hashlib

    from vlm3r.utils.fileio import RACY_SECONDS, FileDigests

    def sha(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    later = [0.0]  # seconds the digests' clock runs ahead of the file times
    digests = FileDigests(clock=lambda: time.time() + later[0])
    path = tmp_path / "video.mp4"
    path.write_bytes(b"a" * 100)
    assert digests.digest(path) == digests.digest(path) == sha(b"a" * 100)
    assert digests.hashed == 2  # just written: its times may not show a change yet, so it is read each time
    later[0] = RACY_SECONDS + 1  # as if the file had been written long before
    assert digests.digest(path) == digests.digest(path) == sha(b"a" * 100)
    assert digests.hashed == 3  # trusted by its signature from then on
    time.sleep(0.05)  # past the file system's timestamp granularity, as the RACY_SECONDS wait guarantees
    before = path.stat()
    path.write_bytes(b"b" * 100)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert digests.digest(path) == sha(b"b" * 100)
    other = tmp_path / "other.mp4"
    other.write_bytes(b"c" * 100)
    os.utime(other, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(other, path)
    assert digests.digest(path) == sha(b"c" * 100) and digests.hashed == 5


def test_run_provenance_reads_a_replaced_model_file_again(tmp_path, monkeypatch):
    """run.json's model checksums (reused on resume, so a 7B model is not read twice) are read again for a file
    replaced by another of the same size and modification time; a settled, untouched file is not read again."""
    import hashlib

    from vlm3r.eval import provenance as eval_run

    folder = tmp_path / "model"
    folder.mkdir()
    weights = folder / "model.safetensors"
    weights.write_bytes(b"a" * 64)
    old = time.time() - 60
    os.utime(weights, (old, old))
    reads = []
    monkeypatch.setattr(eval_run, "sha256_of", lambda p: reads.append(p) or hashlib.sha256(Path(p).read_bytes())
                        .hexdigest())
    first = eval_run.file_checksums(folder)
    assert first["model.safetensors"]["sha256"] == hashlib.sha256(b"a" * 64).hexdigest()
    assert first["model.safetensors"]["settled"] is False and len(reads) == 1  # its ctime is now
    assert eval_run.file_checksums(folder, first) == eval_run.file_checksums(folder) and len(reads) == 3
    settled = eval_run.file_checksums(folder, clock=lambda: time.time() + 3600)  # as a resumed run, an hour on
    assert settled["model.safetensors"]["settled"] is True and len(reads) == 4
    assert eval_run.file_checksums(folder, settled) == settled and len(reads) == 4  # trusted: not read
    time.sleep(0.05)  # past the file system's timestamp granularity
    weights.write_bytes(b"b" * 64)
    os.utime(weights, (old, old))
    replaced = eval_run.file_checksums(folder, settled)["model.safetensors"]
    assert replaced["sha256"] == hashlib.sha256(b"b" * 64).hexdigest() and len(reads) == 5


# ---------------------------------------------------------------------------------------------- interruptions
def children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found |= {int(x) for x in text.split()}
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


SLOW_JOB = """
import sys, time
import {module} as target
original = target.{name}
def slow(*args):
    time.sleep({seconds})
    return original(*args)
slow.__module__, slow.__qualname__ = target.__name__, "{name}"
target.{name} = slow
from vlm3r.cli.main import app
app(sys.argv[1:])
"""


def start_slowed(module: str, name: str, seconds: float, args: list, tmp_path: Path) -> subprocess.Popen:
    """A real ``vlm3r`` command whose per-item job also sleeps, so that work is queued when the signal comes."""
    script = tmp_path / "slowed.py"
    script.write_text(SLOW_JOB.format(module=module, name=name, seconds=seconds))
    process = subprocess.Popen([sys.executable, str(script), *map(str, args)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    deadline = time.monotonic() + 60
    while len(children(process.pid)) < 2:  # both workers started and taking jobs
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the workers never started"
        time.sleep(0.05)
    time.sleep(0.3)
    return process


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads worker processes from /proc (Linux)")
def test_ctrl_c_stops_scenes_metadata_and_its_workers(small_synthetic, tmp_path):
    import shutil

    root = tmp_path / "synthetic"
    shutil.copytree(small_synthetic, root)
    metadata = next((root / "metadata").rglob("synthetic_metadata_*.json"))
    before = metadata.read_bytes()
    process = start_slowed("vlm3r.datasets.metadata", "_build_one", 20, ["scenes", "metadata", "--dataset",
                                                                        "synthetic", "--root", root, "--workers",
                                                                        2], tmp_path)
    workers = children(process.pid)
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.wait(timeout=10)
    took = time.monotonic() - sent
    assert took < STOP_WITHIN_S, f"took {took:.2f} s to stop"
    time.sleep(0.2)
    assert not [w for w in workers if alive(w)]
    assert process.returncode != 0
    assert metadata.read_bytes() == before  # the complete file of the earlier run is kept, not half-replaced
    assert not list(metadata.parent.glob(".*tmp*"))


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads worker processes from /proc (Linux)")
def test_killed_qa_generate_leaves_no_worker_behind(qa_synthetic, tmp_path):
    out = tmp_path / "qa.jsonl"
    process = start_slowed("vlm3r.qa.generate", "generate_scene", 20, ["qa", "generate", "--metadata", qa_synthetic,
                                                                       "--out", out, "--workers", 2], tmp_path)
    workers = children(process.pid)
    assert len(workers) == 2
    process.kill()
    process.wait(timeout=10)
    deadline = time.monotonic() + STOP_WITHIN_S
    while [w for w in workers if alive(w)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [w for w in workers if alive(w)], "workers outlived their killed parent"
    assert not out.exists()


# ---------------------------------------------------------------------------------------------- silently wrong
def test_eval_score_on_a_file_of_both_benchmarks(qa_synthetic, tmp_path):
    """The README's flow: qa generate --bench all, eval baseline, then eval score of those predictions."""
    qa = tmp_path / "qa.jsonl"
    assert run_cli("qa", "generate", "--metadata", qa_synthetic, "--bench", "all", "--out", qa).exit_code == 0
    result = run_cli("eval", "baseline", "--bench", "vsibench", "--qa", qa, "--kind", "frequency", "--out",
                     tmp_path / "base")
    assert result.exit_code == 0, result.output
    scored = run_cli("eval", "score", "--bench", "vsibench", "--qa", qa, "--pred",
                     tmp_path / "base" / "predictions.jsonl", "--out", tmp_path / "scored")
    assert scored.exit_code == 0, scored.output
    frequency = json.loads((tmp_path / "base" / "scores.json").read_text())
    again = json.loads((tmp_path / "scored" / "scores.json").read_text())
    assert again["per_task"] == frequency["per_task"]  # the frequency answers scored as predictions
    # predictions for every question of the file (VSTI ones too) are fine; unknown ids are not
    rows = [json.loads(x) for x in qa.read_text().splitlines()]
    everything = tmp_path / "all.jsonl"
    everything.write_text("".join(json.dumps({"id": r["id"], "prediction": "A"}) + "\n" for r in rows))
    assert run_cli("eval", "score", "--bench", "vsibench", "--qa", qa, "--pred", everything).exit_code == 0
    with everything.open("a") as f:
        f.write(json.dumps({"id": 10**6, "prediction": "A"}) + "\n")
    bad = run_cli("eval", "score", "--bench", "vsibench", "--qa", qa, "--pred", everything)
    assert bad.exit_code == 1 and "1 id(s) not in the question file" in bad.output


def test_frames_out_of_order_are_refused(small_synthetic, tmp_path):
    from vlm3r.scene import MetadataError, read_frame_metadata

    path = next((small_synthetic / "metadata").rglob("synthetic_frame_metadata_*.json"))
    raw = json.loads(path.read_text())
    scene = sorted(raw)[0]
    frames = raw[scene]["frames"]
    frames[1], frames[2] = frames[2], frames[1]
    broken = tmp_path / path.name
    broken.write_text(json.dumps(raw))
    with pytest.raises(MetadataError, match=rf"{scene}.*frames\[2\]\.frame_id.*{frames[2]['frame_id']} after "
                                            rf"{frames[1]['frame_id']}: frames must be in ascending video order"):
        read_frame_metadata(broken)


def _scene_file(small_synthetic, tmp_path, change) -> Path:
    path = next((small_synthetic / "metadata").rglob("synthetic_metadata_*.json"))
    raw = json.loads(path.read_text())
    scene = sorted(raw)[0]
    change(raw[scene])
    expected = raw[scene].pop("expected", None)
    out = tmp_path / "metadata"
    out.mkdir()
    (out / path.name).write_text(json.dumps(raw))
    return out, scene, {"expected": expected} if expected else {}


def _empty_category(scene: dict) -> None:
    scene["object_bboxes"]["lamp"] = []


def _count_off_by_one(scene: dict) -> None:
    category = sorted(scene["object_counts"])[0]
    scene["object_counts"][category] += 1
    scene["expected"] = (f"object_counts[{category!r}] is {scene['object_counts'][category]} but it has "
                         f"{scene['object_counts'][category] - 1} box(es)")


@pytest.mark.parametrize("change, reason", [(_empty_category, "categories without boxes: 'lamp'"),
                                            (_count_off_by_one, None)])
def test_inconsistent_objects_skip_the_scene_with_the_reason(small_synthetic, tmp_path, change, reason):
    from vlm3r.qa.generate import generate, load_scenes
    from vlm3r.qa.tasks import select_tasks

    folder, scene, raw = _scene_file(small_synthetic, tmp_path, change)
    reason = reason or raw.pop("expected")
    records, skips = generate(load_scenes(folder), select_tasks("vsi"), seed=0)
    assert records and not [r for r in records if r.scene_name == scene]
    reasons = {s.reason for s in skips if s.scene == scene}
    assert reasons == {reason}


def test_export_refuses_a_letter_that_is_not_the_ground_truth(qa_synthetic, tmp_path):
    qa = tmp_path / "qa.jsonl"
    assert run_cli("qa", "generate", "--metadata", qa_synthetic, "--bench", "vsi", "--out", qa).exit_code == 0
    rows = [json.loads(x) for x in qa.read_text().splitlines()]
    first = next(r for r in rows if r.get("mc_answer"))
    first["mc_answer"] = next(o[0] for o in first["options"] if o[0] != first["mc_answer"])
    qa.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for fmt in ("llava", "parquet"):
        result = run_cli("qa", "export", "--qa", qa, "--format", fmt, "--out", tmp_path / f"out.{fmt}")
        assert result.exit_code == 1
        assert f"id {first['id']}: mc_answer {first['mc_answer']!r} is option" in " ".join(result.output.split())
        assert not (tmp_path / f"out.{fmt}").exists()


def test_export_of_a_mixed_file_names_the_flag(qa_synthetic, tmp_path):
    qa = tmp_path / "qa.jsonl"
    assert run_cli("qa", "generate", "--metadata", qa_synthetic, "--bench", "all", "--out", qa).exit_code == 0
    result = run_cli("qa", "export", "--qa", qa, "--format", "parquet", "--out", tmp_path / "x.parquet")
    assert result.exit_code == 1 and "choose one with --bench (vsi or vsti)" in " ".join(result.output.split())


# ---------------------------------------------------------------------------------------------- clear errors
def _commands(blocked: Path, data: dict) -> dict[str, list]:
    """Every command that writes, with its output under ``blocked`` (a regular file, so nothing can be created
    there, for root too) and inputs that do not matter: the output is checked before any input is read."""
    return {
        "scenes synth": ["scenes", "synth", "--out", blocked / "d", "--num-scenes", 1],
        "scenes show": ["scenes", "show", data["missing"], "--out", blocked / "x.png"],
        "scenes metadata": ["scenes", "metadata", "--dataset", "scannet", "--root", data["missing"], "--out",
                            blocked / "d"],
        "qa generate": ["qa", "generate", "--metadata", data["missing"], "--out", blocked / "qa.jsonl"],
        "qa export": ["qa", "export", "--qa", data["missing"], "--format", "llava", "--out", blocked / "x.json"],
        "eval score": ["eval", "score", "--bench", "vsibench", "--qa", data["missing"], "--pred", data["missing"],
                       "--out", blocked / "d"],
        "eval baseline": ["eval", "baseline", "--bench", "vsibench", "--qa", data["missing"], "--kind", "random",
                          "--out", blocked / "d"],
        "eval lmms-tasks": ["eval", "lmms-tasks", "--qa", data["missing"], "--video-root", data["missing"], "--out",
                            blocked / "d"],
        "cut3r reconstruct": ["cut3r", "reconstruct", data["missing"], "--cut3r", data["missing"], "--out",
                              blocked / "x.ply"],
        "features extract": ["features", "extract", "--videos", data["folder"], "--cut3r", data["missing"], "--out",
                             blocked / "d"],
        "train": ["train", "--config", "tiny", "--set", f"data.train={data['missing']}", "--set",
                  f"run.output_dir={blocked / 'run'}"],
        "demo": ["demo", "--out", blocked / "d"],
    }


@pytest.mark.parametrize("command", list(_commands(Path("x"), {"missing": "", "folder": ""})))
def test_unwritable_outputs_are_named_before_any_work(command, tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("in the way")
    args = _commands(blocked, {"missing": tmp_path / "missing.json", "folder": tmp_path})[command]
    result = run_cli(*args)
    option = "run.output_dir" if command == "train" else "--out"
    assert result.exit_code == 1, result.output
    assert f"({option}): cannot be created: {blocked} is a file" in " ".join(result.stderr.split())
    assert "error" not in result.stdout and "Traceback" not in result.output


def test_an_error_naming_a_path_with_brackets_prints_it_as_it_is(tmp_path):
    """Rich markup in a path ([bold], a stray [/x]) is printed literally, not interpreted (or crashing)."""
    missing = tmp_path / "[bold]scans[/x]" / "metadata.json"
    result = run_cli("qa", "generate", "--metadata", missing, "--out", tmp_path / "qa.jsonl")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert str(missing) in "".join(result.stderr.split("\n"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_named(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = run_cli("scenes", "synth", "--out", folder / "d", "--num-scenes", 1)
    finally:
        folder.chmod(0o755)
    assert result.exit_code == 1 and f"(--out): cannot write in {folder}" in " ".join(result.stderr.split())


def test_devices_and_frame_counts_are_checked(tmp_path):
    import torch

    if not torch.cuda.is_available():
        result = run_cli("ask", "--model", tmp_path / "none", "--device", "cuda", tmp_path / "v.mp4", "q")
        assert result.exit_code == 1 and "--device cuda: CUDA is not available" in result.stderr
        assert "use --device cpu" in result.stderr
    for frames in ("-3", "0"):
        result = run_cli("ask", "--model", tmp_path / "none", "--frames", frames, tmp_path / "v.mp4", "q")
        assert result.exit_code == 2 and "--frames" in result.stderr  # a usage error, not the default count
    bad = run_cli("ask", "--model", tmp_path / "none", "--device", "gpu0", tmp_path / "v.mp4", "q")
    assert bad.exit_code == 1 and "--device 'gpu0': not a device name" in bad.stderr


def test_ask_refuses_a_prompt_longer_than_the_context(tiny_model, qa_synthetic):
    """A 3 MB question (the server's 500 once) is refused by its byte count, before the video is decoded; one just
    over the context is refused by its exact count; both name the counts."""
    from vlm3r.model.pipeline import PromptTooLongError, Vlm3rPipeline

    folder = tiny_model
    video = sorted((qa_synthetic / "videos").rglob("*.mp4"))[0]
    huge = "x" * (3 << 20)
    result = run_cli("ask", "--model", folder, "--frames", "4", video, huge)
    assert result.exit_code == 1
    assert f"the question is {3 << 20} bytes, so at least" in result.stderr
    pipeline = Vlm3rPipeline.from_pretrained(folder, num_frames=4)
    context = pipeline.model.config.llm.max_position_embeddings
    fixed = len(pipeline.prefix_ids) + 4 * pipeline.model.config.tokens_per_frame
    template = len(pipeline.suffix_ids(""))  # "\n", then <|im_end|>\n<|im_start|>assistant\n
    question = "hello" + " hello" * (context - fixed - template - 16)  # one token a word
    assert fixed + len(pipeline.suffix_ids(question)) == context - 15  # with a 16-token answer: one too many
    with pytest.raises(PromptTooLongError, match=rf"{context - 15} tokens .* max_tokens 16 are more than the model's "
                                                 rf"context of {context} tokens"):
        pipeline.ask(video, question)
    assert pipeline.encodings == 0  # refused before any model work

def test_lmms_task_paths_survive_yaml(tmp_path, qa_synthetic):
    import yaml

    qa = tmp_path / "qa.jsonl"
    assert run_cli("qa", "generate", "--metadata", qa_synthetic, "--bench", "vsi", "--out", qa).exit_code == 0
    out = tmp_path / "tasks #1: local"
    assert run_cli("eval", "lmms-tasks", "--qa", qa, "--video-root", qa_synthetic, "--out", out).exit_code == 0
    loader = type("TaggedLoader", (yaml.SafeLoader,), {})
    loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # lmms-eval's !function tags
    task = yaml.load((out / "vlm3r_vsibench.yaml").read_text(), Loader=loader)
    assert task["dataset_kwargs"]["data_files"]["test"] == str(out / "vlm3r_vsibench_docs.jsonl")
    assert task["task"] == "vlm3r_vsibench"


# ---------------------------------------------------------------------------------------------- a first look
def test_report_names_its_rows_and_explains_missing_scores(qa_synthetic, tmp_path):
    from vlm3r.eval import report as report_module
    from vlm3r.eval.baselines import frequency_baseline, random_baseline
    from vlm3r.qa.benchmarks import VSIBENCH
    from vlm3r.qa.generate import generate, load_scenes
    from vlm3r.qa.tasks import select_tasks

    records, _ = generate(load_scenes(qa_synthetic), select_tasks("vsi"), seed=0)
    frequency, chance = frequency_baseline(VSIBENCH, records), random_baseline(VSIBENCH, records)
    path = report_module.write_report(tmp_path, frequency, {"random": chance}, "t", label="frequency")
    table = [line for line in path.read_text().splitlines() if line.startswith("| ")]
    assert table[1].startswith("| frequency | ") and table[2].startswith("| random | - |")
    assert "model" not in path.read_text() and report_module.NO_SCORE_NOTE in path.read_text()
    figure = report_module._plot_bars(tmp_path / "bars.png", {"frequency": frequency, "random": chance},
                                      list(frequency.columns))
    legend = figure.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["frequency", "random", "no score"]
    assert [h.get_hatch() for h in legend.legend_handles] == [None, None, "//"]  # swatches drawn as their bars
    random_bars = figure.axes[0].containers[1]
    solid = [bar.get_hatch() is None for bar in random_bars]
    assert solid == [chance.columns.get(c) is not None for c in frequency.columns]
    mra = report_module._plot_mra(tmp_path / "mra.png", frequency)
    assert mra.axes[0].get_title() == "vsibench: numeric answers within each MRA threshold"


def test_scannet_labels_of_real_scans(tmp_path, caplog):
    import logging

    import numpy as np

    from vlm3r.datasets.categories import CategoryTable
    from vlm3r.datasets.scannet.adapter import read_axis_alignment

    table = CategoryTable.load("scannet")
    assert table.resolve("trashcan") == "trash bin" == table.resolve("trash can")  # v1 scans spell it so
    assert table.resolve("mattress") == "mattress"  # a category of the released VSI-Bench ScanNet scenes
    assert table.label_id("computer mouse") == 33 and table.label_id("mattress") == 34  # earlier ids unchanged
    meta = tmp_path / "scene0000_00.txt"
    meta.write_text("colorHeight = 968\nsceneType = Bedroom\n")
    with caplog.at_level(logging.WARNING, logger="vlm3r.datasets.scannet.adapter"):
        matrix = read_axis_alignment(meta)
    assert (matrix == np.eye(4)).all()
    assert f"{meta}: no axisAlignment; the scene is used unaligned" in caplog.text


def test_install_is_quiet_and_says_what_it_leaves_out():
    """lmms-eval goes in last and without its requirements: pip checks dependencies only for what an install
    resolves, so no resolver 'ERROR' about lmms-eval's absent requirements is printed; the README says why."""
    root = Path(__file__).resolve().parents[1]
    recipe = (root / "Makefile").read_text().split("$(STAMP):", 1)[1].split("\ndemo:", 1)[0]
    installs = [line.strip() for line in recipe.splitlines() if line.strip().startswith("$(PIP)")]
    assert installs[-1] == "$(PIP) --no-deps lmms-eval" and "-qq" in (root / "Makefile").read_text()
    readme = (root / "README.md").read_text()
    assert "apt install python3-venv" in readme and "download.pytorch.org/whl/cpu" in readme
