"""Faults of runs and outputs, each reproduced with real files and real processes: question generation on a category
of 20,000 boxes (time and memory linear in the box count, the questions those of the all-pairs algorithm), two
``eval run``s into one folder (the second refused at once; a killed run's lock is gone with it), ``--limit`` below
what a folder holds (no answer deleted), and output names as long as the file system allows (the temporary name
fits; a name that cannot be created is refused before any work)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
from itertools import product
from pathlib import Path

import numpy as np
import pytest
from helpers import eval_args, start_held_run

from vlm3r.datasets.synthetic.crowd import crowd_scene
from vlm3r.geometry import box_box_distance
from vlm3r.qa import generate as generate_module
from vlm3r.qa.generate import generate, load_scenes
from vlm3r.qa.geometry import SceneGeometry
from vlm3r.qa.record import read_qa_jsonl
from vlm3r.qa.tasks import TASKS

# ---------------------------------------------------------------------------------------------- qa generate
MANY = 20_000  # boxes of one category
#: Bytes of peak resident memory ``qa generate`` may add per box over the same command on the scene without them:
#: the box as JSON text, parsed, and as arrays (measured: 3.3 KB per box at 20,000, nearly all of it reading the
#: file). The all-pairs distance matrix alone held 8 B x 20,000 = 160 KB per box.
MEMORY_PER_BOX = 4096
GENERATE_TIMEOUT_S = 120  # the all-pairs algorithm needs hours at 20,000 boxes, when memory does not stop it first


def with_cups(qa_synthetic: Path, folder: Path, count: int, seed: int = 0) -> Path:
    """The first synthetic scene plus ``count`` small boxes of a new category "cup"."""
    return crowd_scene(qa_synthetic, folder, "cup", count, seed)


PEAK_MEMORY = """
import resource, sys
from vlm3r.cli.main import app
try:
    app(sys.argv[1:], prog_name="vlm3r")
except SystemExit as exc:
    code = exc.code
print("peak_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def generate_peak_bytes(metadata: Path, out: Path) -> int:
    """Run ``vlm3r qa generate`` in a process of its own; its peak resident memory in bytes (Linux: KiB x 1024)."""
    result = subprocess.run([sys.executable, "-c", PEAK_MEMORY, "qa", "generate", "--metadata", str(metadata),
                             "--out", str(out), "--per-scene", str(10**6)],  # every question kept
                            capture_output=True, text=True, timeout=GENERATE_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    return int(result.stderr.rsplit("peak_kb", 1)[1].split()[0]) * 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss is in KiB on Linux")
def test_20000_boxes_of_one_category_in_bounded_memory(qa_synthetic, tmp_path):
    base = with_cups(qa_synthetic, tmp_path / "base", 0)
    many = with_cups(qa_synthetic, tmp_path / "many", MANY)
    base_peak = generate_peak_bytes(base.parent, tmp_path / "base.jsonl")
    peak = generate_peak_bytes(many.parent, tmp_path / "many.jsonl")
    assert peak <= base_peak + MEMORY_PER_BOX * MANY
    questions = {name: [r.to_dict() | {"id": None} for r in read_qa_jsonl(tmp_path / f"{name}.jsonl")]
                 for name in ("base", "many")}
    counts = [q["ground_truth"] for q in questions["many"] if q["question_type"] == "object_counting"
              and q["category"] == "cup"]
    assert counts == [MANY]
    # the cups change the questions that can name them or that walk round them; every other one is as before
    touched = ("object_counting", "object_rel_distance", "route_planning")
    assert [q for q in questions["many"] if q["question_type"] not in touched] == \
        [q for q in questions["base"] if q["question_type"] not in touched]


class AllPairsGeometry(SceneGeometry):
    """The algorithm before: the exact distance of every pair of boxes of the scene, as an N x N matrix, and the
    closest distance of two categories as the least entry of their block."""

    def __init__(self, scene):
        super().__init__(scene)
        n = len(self.boxes)
        i, j = np.triu_indices(n, k=1)
        d = box_box_distance(self.centers[i], self.lengths[i], self.axes[i], self.centers[j], self.lengths[j],
                             self.axes[j])
        self.matrix = np.zeros((n, n))
        self.matrix[i, j] = self.matrix[j, i] = d

    def category_distance(self, a: str, b: str) -> float:
        ia = [k for k, c in enumerate(self.categories) if c == a]
        ib = [k for k, c in enumerate(self.categories) if c == b]
        return float(self.matrix[np.ix_(ia, ib)].min())


def test_questions_equal_those_of_the_all_pairs_algorithm(qa_synthetic, tmp_path, monkeypatch):
    scenes = load_scenes(qa_synthetic)
    crowded = load_scenes(with_cups(qa_synthetic, tmp_path / "crowded", 300).parent)[0]
    crowded.scene.scene_name = "crowded"
    scenes.append(crowded)
    for item in scenes:  # every pair of categories, both ways, to the last bit
        new, old = SceneGeometry(item.scene), AllPairsGeometry(item.scene)
        for a, b in product(item.scene.objects, repeat=2):
            assert new.category_distance(a, b) == old.category_distance(a, b), (item.scene.scene_name, a, b)
    records, skips = generate(scenes, list(TASKS), seed=3)
    monkeypatch.setattr(generate_module, "SceneGeometry", AllPairsGeometry)
    reference, reference_skips = generate(scenes, list(TASKS), seed=3)
    assert [r.to_dict() for r in records] == [r.to_dict() for r in reference]
    assert skips == reference_skips
    assert {r.question_type for r in records if r.scene_name == "crowded"} >= {
        "object_abs_distance", "object_rel_distance", "object_rel_distance_v2", "object_rel_distance_v3"}


# ---------------------------------------------------------------------------------------------- long output names
NAME_MAX = 255  # bytes in a name on the file systems the tests run on (ext4, tmpfs, overlayfs, APFS)
LONGEST_WORKING = 244  # characters: fits, though the old temporary name (name + 14 bytes) did not
TOO_LONG = NAME_MAX + 1


def run_cli(*args):
    from typer.testing import CliRunner

    from vlm3r.cli.main import app

    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "100000"})


def named(length: int, suffix: str = "") -> str:
    return "n" * (length - len(suffix)) + suffix


@pytest.fixture(scope="module")
def qa_file(qa_synthetic, tmp_path_factory) -> Path:
    from vlm3r.qa.record import write_qa_jsonl
    from vlm3r.qa.tasks import select_tasks

    path = tmp_path_factory.mktemp("long") / "qa.jsonl"
    write_qa_jsonl(path, generate(load_scenes(qa_synthetic), select_tasks("vsi"), seed=0)[0])
    return path


def _writers(qa_synthetic: Path, qa: Path, predictions: Path) -> dict[str, tuple[list, str, bool]]:
    """Every command that writes a file or folder of a name the user gives: (arguments before ``--out``, the
    output's suffix, whether it is a folder)."""
    scene = sorted(read_scene_names(qa_synthetic))[0]
    return {
        "qa generate": (["qa", "generate", "--metadata", qa_synthetic], ".jsonl", False),
        "qa export llava": (["qa", "export", "--qa", qa, "--format", "llava"], ".json", False),
        "qa export parquet": (["qa", "export", "--qa", qa, "--format", "parquet", "--bench", "vsi"], ".parquet",
                              False),
        "scenes show": (["scenes", "show", qa_synthetic / scene], ".png", False),
        "eval score": (["eval", "score", "--bench", "vsibench", "--qa", qa, "--pred", predictions], "", True),
        "eval baseline": (["eval", "baseline", "--bench", "vsibench", "--qa", qa, "--kind", "frequency"], "", True),
        "eval lmms-tasks": (["eval", "lmms-tasks", "--qa", qa, "--video-root", qa_synthetic], "", True),
    }


def read_scene_names(root: Path) -> list[str]:
    path = next((root / "metadata").rglob("synthetic_metadata_*.json"))
    return list(json.loads(path.read_text()))


WRITERS = ["qa generate", "qa export llava", "qa export parquet", "scenes show", "eval score", "eval baseline",
           "eval lmms-tasks"]


@pytest.mark.parametrize("command", WRITERS)
def test_output_names_as_long_as_the_file_system_allows(command, qa_synthetic, qa_file, tmp_path):
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("".join(json.dumps({"id": r.id, "prediction": "A"}) + "\n"
                                   for r in read_qa_jsonl(qa_file)))
    args, suffix, folder = _writers(qa_synthetic, qa_file, predictions)[command]
    works, refused = tmp_path / "works", tmp_path / "refused"
    works.mkdir()
    refused.mkdir()
    out = works / named(LONGEST_WORKING, suffix)
    result = run_cli(*args, "--out", out)
    assert result.exit_code == 0, result.output
    assert out.is_dir() if folder else out.is_file()
    assert not [p.name for p in works.rglob(".*")]  # no temporary file left
    out = refused / named(TOO_LONG, suffix)
    result = run_cli(*args, "--out", out)
    assert result.exit_code == 1
    assert result.stderr == (f"error: {out} (--out): cannot be created: its name is {TOO_LONG} bytes long, more "
                             f"than the {NAME_MAX} a name may have on this file system\n")
    assert result.stdout == "" and not list(refused.iterdir())  # refused before any work


@pytest.mark.parametrize("name", [named(NAME_MAX), named(NAME_MAX, ".json"), "é" * 125 + ".json",
                                  "a." + "b" * (NAME_MAX - 2), named(NAME_MAX, ".hidden")[::-1]])
def test_a_temporary_name_fits_wherever_the_final_name_fits(name, tmp_path):
    from vlm3r.utils.fileio import atomic_path

    assert len(os.fsencode(name)) == NAME_MAX
    final = tmp_path / name
    with atomic_path(final) as tmp:
        seen = tmp.name
        tmp.write_text("done")
    assert final.read_text() == "done" and [p.name for p in tmp_path.iterdir()] == [name]
    assert len(os.fsencode(seen)) == NAME_MAX
    assert seen.endswith(".tmp" + Path(name).suffix[:NAME_MAX - 14])  # the suffix kept while it fits


def test_a_path_too_long_and_a_side_file_too_long_are_refused_before_any_work(qa_synthetic, tmp_path):
    deep = tmp_path.joinpath(*[named(200)] * 21)  # none of it exists yet
    out = deep / "qa.jsonl"
    size = len(os.fsencode(os.path.abspath(out)))
    assert size > 4095
    result = run_cli("qa", "generate", "--metadata", qa_synthetic, "--out", out)
    assert result.exit_code == 1
    assert result.stderr == (f"error: {out} (--out): cannot be created: its path is {size} bytes long; a path may "
                             f"have at most 4095 bytes\n")
    result = run_cli("eval", "score", "--bench", "vsibench", "--qa", tmp_path / "q", "--pred", tmp_path / "p",
                     "--out", deep)
    assert result.exit_code == 1
    size = len(os.fsencode(os.path.abspath(deep)))
    assert result.stderr == (f"error: {deep} (--out): cannot be created: its path is {size} bytes long and 512 "
                             f"bytes to spare for the files written in it; a path may have at most 4095 bytes\n")
    # qa generate also writes <name>.skipped.jsonl beside --out: 8 bytes longer than a name ending in .jsonl
    out = tmp_path / named(250, ".jsonl")
    result = run_cli("qa", "generate", "--metadata", qa_synthetic, "--out", out)
    skipped = tmp_path / ("n" * 244 + ".skipped.jsonl")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (f"error: {skipped} (--out): cannot be created: its name is 258 bytes long, more than "
                             f"the {NAME_MAX} a name may have on this file system\n")
    assert list(tmp_path.iterdir()) == []
    # cut3r reconstruct writes <out>.cameras.json beside its point cloud: refused before CUT3R is even looked for
    out = tmp_path / ("n" * 245 + ".ply")
    result = run_cli("cut3r", "reconstruct", tmp_path / "room.mp4", "--cut3r", tmp_path / "absent.pth", "--out", out)
    assert result.exit_code == 1
    assert result.stderr == (f"error: {out.with_suffix('.cameras.json')} (--out): cannot be created: its name is 258 "
                             f"bytes long, more than the {NAME_MAX} a name may have on this file system\n")


# ---------------------------------------------------------------------------------------------- eval run
WIDE = {**os.environ, "COLUMNS": "100000"}  # error lines unwrapped
RUN_TIMEOUT_S = 300


def test_a_second_run_is_refused_at_once_and_a_killed_runs_lock_goes_with_it(plain_eval_run, tiny_model,
                                                                            vsi_questions, qa_synthetic, tmp_path):
    """A run caught after its first video holds its folder: a second run into it is refused at once (while the
    first still runs) and changes nothing; the first is then killed (SIGKILL): its lock goes with it (the file
    stays), and a rerun finishes the folder to what an uninterrupted run writes."""
    out = tmp_path / "run"
    args = eval_args(tiny_model, vsi_questions, qa_synthetic, out)
    first = start_held_run(args, out, WIDE)
    try:
        before = (out / "predictions.jsonl").read_bytes()
        second = subprocess.run([sys.executable, "-m", "vlm3r", *map(str, args)], capture_output=True, text=True,
                                timeout=RUN_TIMEOUT_S, env=WIDE)
        assert first.poll() is None  # refused while the first still runs: it did not wait for it
        assert second.returncode == 1
        assert second.stderr == (f"error: {out} (--out): another vlm3r eval run is writing into this folder (process "
                                 f"{first.pid}); wait for it to finish (then run again to resume or score it), or "
                                 "give another --out\n")
        assert (out / "predictions.jsonl").read_bytes() == before
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
    finally:
        first.kill()
    assert (out / ".run.lock").read_text() == f"{first.pid}\n"  # the file stays; its lock went with the process
    rerun = run_cli(*args)
    assert rerun.exit_code == 0, rerun.output
    assert (out / "predictions.jsonl").read_bytes() == (plain_eval_run / "predictions.jsonl").read_bytes()


def test_a_data_parallel_run_into_a_taken_folder_stops_in_every_process(tiny_model, vsi_questions, qa_synthetic,
                                                                       tmp_path):
    """Under torchrun, process 0 alone takes the folder's lock (a 2-process run into a free folder works:
    test_eval_run.py); into a taken folder, it is refused and its other process stops with it."""
    from vlm3r.eval.run import run_lock

    out = tmp_path / "run"
    out.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with run_lock(out):  # held by this process, as a run of its own would hold it
        parallel = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                                   "--master_port", str(port), "-m", "vlm3r",
                                   *map(str, eval_args(tiny_model, vsi_questions, qa_synthetic, out))],
                                  capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                                  env={**WIDE, "OMP_NUM_THREADS": "1"})
    message = (f"error: {out} (--out): another vlm3r eval run is writing into this folder (process {os.getpid()}); "
               "wait for it to finish (then run again to resume or score it), or give another --out\n")
    assert parallel.returncode == 1 and parallel.stderr.count(message) == 2  # from both processes
    assert sorted(p.name for p in out.iterdir()) == [".run.lock"]


def test_a_smaller_limit_keeps_every_answer(plain_eval_run, tiny_model, vsi_questions, qa_synthetic, tmp_path):
    out = tmp_path / "run"
    total = len(read_qa_jsonl(vsi_questions))
    plain = (plain_eval_run / "predictions.jsonl").read_bytes().splitlines(keepends=True)
    assert run_cli(*eval_args(tiny_model, vsi_questions, qa_synthetic, out, "--limit", 4)).exit_code == 0
    assert (out / "predictions.jsonl").read_bytes() == b"".join(plain[:4])
    result = run_cli(*eval_args(tiny_model, vsi_questions, qa_synthetic, out, "--limit", 2))
    assert result.exit_code == 0, result.output
    assert (out / "predictions.jsonl").read_bytes() == b"".join(plain[:4])  # the 4 answers kept
    assert json.loads((out / "scores.json").read_text())["n"] == 2
    note = (f"Scored the first 2 of the file's {total} vsibench questions (--limit 2); predictions.jsonl holds 4 "
            "answers, all kept.")
    checksum = f"Question file: {vsi_questions} (SHA-256 {hashlib.sha256(vsi_questions.read_bytes()).hexdigest()})."
    assert (out / "report.md").read_text().endswith(f"\n{note}\n\n{checksum}\n") and note in result.stdout
    result = run_cli(*eval_args(tiny_model, vsi_questions, qa_synthetic, out, "--limit", 5))
    assert result.exit_code == 0, result.output
    assert (out / "predictions.jsonl").read_bytes() == b"".join(plain[:5])  # the missing one answered
    assert json.loads((out / "scores.json").read_text())["n"] == 5
    assert f"Scored the first 5 of the file's {total} vsibench questions (--limit 5)." in result.stdout
