"""What the command line shows a new user (issue #24): every command's help, tables printed to a pipe, the files
the export and baseline commands say they wrote, and lmms-eval tasks that load from any folder."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from rich.console import Console
from typer.testing import CliRunner

from vlm3r.cli.main import app
from vlm3r.qa.record import QARecord, write_qa_jsonl

DIRECTIONS = ["object_rel_direction_easy", "object_rel_direction_medium", "object_rel_direction_hard"]
ORDER = "bed, closet, mirror, window, nightstand, table, chair, trash bin, lamp, sofa, shelf"  # one long answer


def _question(id_: int, question_type: str, options: list, truth, letter: str, **more) -> QARecord:
    return QARecord(id=id_, dataset="synthetic", scene_name="room0", video_path="videos/room0.mp4",
                    question_type=question_type, question=f"question {id_}?", options=options, ground_truth=truth,
                    mc_answer=letter, **more)


def _questions(path: Path) -> Path:
    """Three relative-direction questions (answer left, letter A), one appearance-order question with a long
    answer (a wide column, as real files have) and one VSTI-Bench question: 4 VSI-Bench questions in all."""
    records = [_question(i, t, ["A. left", "B. right"], "left", "A") for i, t in enumerate(DIRECTIONS)]
    records.append(_question(3, "obj_appearance_order", [f"A. {ORDER}", "B. sofa, lamp"], ORDER, "A"))
    records.append(_question(4, "camera_displacement", ["A. 1.5", "B. 3.0"], 1.5, "A", frame_indices=[0, 12]))
    write_qa_jsonl(path, records)
    return path


def _commands(command, path=()):
    yield list(path), command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_every_help_shows_flags_bare_and_arguments_by_name():
    """typer 0.29 wrote ``<bool>`` after every flag and ``{qa}`` (read as a format placeholder) in usage lines."""
    runner = CliRunner()
    usages = {}
    for path, command in _commands(typer.main.get_command(app)):
        result = runner.invoke(app, [*path, "--help"], prog_name="vlm3r")
        assert result.exit_code == 0, result.output
        text = result.output
        assert "<bool>" not in text and not re.search(r"\{\w+\}", text), f"vlm3r {' '.join(path)} --help:\n{text}"
        assert re.search(r"--help +Show this message", text), text  # the flag, then its help: no type between
        usages[" ".join(path)] = next(line.strip() for line in text.splitlines() if "Usage:" in line)
        if not hasattr(command, "commands"):  # a command, not a group: its docstring ends with an example
            assert "Example: vlm3r " + " ".join(path) in " ".join(text.split()), text
    assert {"demo", "ask", "train", "serve", "scenes synth", "qa generate", "eval run", "eval lmms-tasks",
            "features extract"} <= set(usages)  # the walk reached every level
    assert usages["ask"] == "Usage: vlm3r ask [OPTIONS] [VIDEO] QUESTION..."
    assert usages["qa stats"] == "Usage: vlm3r qa stats [OPTIONS] QA"
    assert usages["scenes show"] == "Usage: vlm3r scenes show [OPTIONS] SCENE_DIR"
    assert usages["scenes info"] == "Usage: vlm3r scenes info [OPTIONS] FILE"
    assert usages["cut3r reconstruct"] == "Usage: vlm3r cut3r reconstruct [OPTIONS] VIDEO"
    assert usages["qa"] == "Usage: vlm3r qa [OPTIONS] COMMAND [ARGS]..."
    assert re.search(r"--verbose +-v +Log progress details\.", runner.invoke(app, ["--help"]).output)


def test_a_missing_argument_names_it_in_the_usage_line():
    result = CliRunner().invoke(app, ["qa", "stats"], prog_name="vlm3r")
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == "Usage: vlm3r qa stats [OPTIONS] QA"


def _rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]


def test_qa_stats_piped_keeps_whole_names(tmp_path):
    """Piped (not a terminal), rich used 80 columns and cut the three names to ``object_rel_dire…``."""
    qa = _questions(tmp_path / "qa.jsonl")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")}
    run = subprocess.run([sys.executable, "-m", "vlm3r", "qa", "stats", str(qa)], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, env=env, check=True)
    rows = _rows(run.stdout)
    assert rows[:3] == [[name, "1", "1", "A:100%", "left 1"] for name in DIRECTIONS]
    assert rows[3] == ["obj_appearance_order", "1", "1", "A:100%", f"{ORDER} 1"]
    assert rows[4] == ["camera_displacement", "1", "1", "A:100%", "1.5 .. 1.5 (mean 1.50)"]
    assert run.stdout.splitlines()[-1] == "5 questions"


def test_tables_keep_names_whole_in_a_narrow_terminal(tmp_path):
    """At 80 columns a name column stays on one line (the long answer wraps instead)."""
    from vlm3r.qa.record import read_qa_jsonl
    from vlm3r.qa.stats import qa_stats
    from vlm3r.viz.tables import qa_stats_summary

    console = Console(width=80, record=True, file=open(os.devnull, "w"))
    for item in qa_stats_summary(qa_stats(read_qa_jsonl(_questions(tmp_path / "qa.jsonl")))):
        console.print(item)
    names = [row[0] for row in _rows(console.export_text()) if row[0]]
    assert names == [*DIRECTIONS, "obj_appearance_order", "camera_displacement"]


@pytest.fixture
def questions_here(tmp_path, monkeypatch):
    """qa.jsonl with a few questions in a fresh working folder, output not a terminal and no COLUMNS."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLUMNS", raising=False)
    return _questions(Path("qa.jsonl"))


def test_qa_export_parquet_says_what_it_wrote(questions_here):
    runner = CliRunner()
    result = runner.invoke(app, ["qa", "export", "--qa", "qa.jsonl", "--format", "parquet", "--bench", "vsi",
                                 "--out", "vsi.parquet"])
    assert result.exit_code == 0, result.output
    assert result.output == "wrote 4 vsibench questions to vsi.parquet\n"
    result = runner.invoke(app, ["qa", "export", "--qa", "qa.jsonl", "--format", "parquet", "--bench", "vstibench",
                                 "--out", "vsti.parquet"])
    assert result.output == "wrote 1 vstibench questions to vsti.parquet\n"


def test_eval_baseline_says_what_it_wrote(questions_here):
    runner = CliRunner()
    result = runner.invoke(app, ["eval", "baseline", "--kind", "frequency", "--bench", "vsibench", "--qa", "qa.jsonl",
                                 "--out", "freq"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in Path("freq").iterdir()) == ["predictions.jsonl", "scores.json"]
    assert result.output.splitlines()[-1] == ("wrote freq/scores.json, freq/predictions.jsonl "
                                              "(4 vsibench questions scored)")
    result = runner.invoke(app, ["eval", "baseline", "--kind", "random", "--bench", "vsti", "--qa", "qa.jsonl",
                                 "--out", "random"])
    assert sorted(p.name for p in Path("random").iterdir()) == ["scores.json"]
    assert result.output.splitlines()[-1] == "wrote random/scores.json (1 vstibench questions scored)"


def _lmms_tasks(tmp_path, monkeypatch) -> Path:
    """Tasks written by ``vlm3r eval lmms-tasks --out lmms_tasks`` run in ``tmp_path/here`` (relative paths)."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    _questions(Path("qa.jsonl"))
    result = CliRunner().invoke(app, ["eval", "lmms-tasks", "--qa", "qa.jsonl", "--video-root", "videos", "--out",
                                      "lmms_tasks"])
    assert result.exit_code == 0, result.output
    tasks = here.resolve() / "lmms_tasks"
    assert " ".join(result.output.split()) == (f"wrote task vlm3r_vsibench to {tasks}; run lmms-eval with --tasks "
                                               f"vlm3r_vsibench --include_path {tasks}")
    return tasks


def test_lmms_task_names_its_data_by_absolute_path(tmp_path, monkeypatch):
    tasks = _lmms_tasks(tmp_path, monkeypatch)
    yaml = (tasks / "vlm3r_vsibench.yaml").read_text().splitlines()
    assert yaml[3:5] == ["  data_files:", f'    test: "{tasks}/vlm3r_vsibench_docs.jsonl"']
    assert "doc_to_visual: !function vlm3r_vsibench_utils.doc_to_visual" in yaml
    docs = [json.loads(line) for line in (tasks / "vlm3r_vsibench_docs.jsonl").read_text().splitlines()]
    assert [d["video_path"] for d in docs] == [str(tasks.parent / "videos" / "videos" / "room0.mp4")] * 4


def _load_task(tasks: Path):
    """The task as lmms-eval 0.7.3 loads it for ``--tasks vlm3r_vsibench --include_path tasks``."""
    from lmms_eval.tasks import TaskManager

    return TaskManager(include_path=str(tasks), include_defaults=False).load_task_or_group(["vlm3r_vsibench"])


def test_lmms_eval_loads_the_task_from_another_folder_or_names_its_missing_file(tmp_path, monkeypatch):
    pytest.importorskip("lmms_eval", reason="lmms-eval is an optional extra (make test installs it)")
    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "datasets_cache"))
    tasks = _lmms_tasks(tmp_path, monkeypatch)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    task = _load_task(tasks)["vlm3r_vsibench"]
    assert [doc["id"] for doc in task.test_docs()] == [0, 1, 2, 3]  # the VSI-Bench questions, read from elsewhere

    from vlm3r.errors import InputError

    docs = tasks / "vlm3r_vsibench_docs.jsonl"
    docs.unlink()
    with pytest.raises(InputError) as failure:
        _load_task(tasks)
    assert str(failure.value) == (f"{docs}: no such file: the questions of the lmms-eval task vlm3r_vsibench (its "
                                  f"YAML's dataset_kwargs.data_files.test); write the task again with vlm3r eval "
                                  f"lmms-tasks")


def test_make_demo_ends_saying_how_to_run_vlm3r():
    """``make demo`` installs vlm3r into .venv, which is not on the PATH: its last line says how to run it."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}  # under make test
    make = subprocess.run(["make", "--no-print-directory", "-n", "demo"], cwd=Path(__file__).parents[1],
                          capture_output=True, text=True, env=env)
    assert make.stdout.splitlines()[-2:] == [
        ".venv/bin/vlm3r demo",
        "echo \"vlm3r is installed in .venv: run .venv/bin/vlm3r, or 'source .venv/bin/activate' first\""]
