"""The README's first hour, run as a new user runs it: its command block, command by command, in a fresh folder
(``make demo`` as its Makefile recipe runs it, the venv's ``bin`` on the PATH as ``source .venv/bin/activate`` puts
it), and every promise the README makes about what each command gives; then its Python snippet on the demo's data."""

import contextlib
import io
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKER = "<!-- first hour: tests/test_first_hour.py runs the commands of the next block -->"
COMMAND_TIMEOUT_S = 600
README_PORT = "8000"


def block_after(text: str, marker: str, language: str) -> str:
    return text.split(marker, 1)[1].split(f"```{language}\n", 1)[1].split("```", 1)[0]


def shell_commands(block: str) -> list[str]:
    """The block's commands: lines joined while a quote is open or a line ends in a backslash; comments dropped."""
    commands, pending = [], ""
    for line in block.splitlines():
        pending = f"{pending}\n{line}" if pending else line
        try:
            words = shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        if pending.rstrip().endswith("\\"):
            continue
        if words:
            commands.append(pending.strip())
        pending = ""
    assert not pending, f"unterminated command in the README block: {pending!r}"
    return commands


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def python_snippets(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.fixture(scope="module")
def first_hour(tmp_path_factory):
    """Every command of the README block, run in order in a fresh folder: {command's words: completed process}."""
    folder = tmp_path_factory.mktemp("first_hour")
    port = free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "COLUMNS": "200"}
    recipe = (ROOT / "Makefile").read_text().split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "$(VENV)/bin/vlm3r demo" in recipe  # what `make demo` runs, once .venv is installed
    results, server = {}, None
    try:
        for command in shell_commands(block_after(README.read_text(), MARKER, "bash")):
            if command == "source .venv/bin/activate":
                continue  # the PATH above
            run = command.replace(README_PORT, port)
            if command == "make demo":
                run = "vlm3r demo"
            if command == "kill %1":
                server.send_signal(signal.SIGTERM)
                results[command] = subprocess.CompletedProcess(command, server.wait(timeout=60), *server.communicate())
                continue
            if command.endswith("&"):
                server = subprocess.Popen(["bash", "-c", run.removesuffix("&")], cwd=folder, env=env, text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                continue
            done = subprocess.run(["bash", "-c", run], cwd=folder, env=env, capture_output=True, text=True,
                                  timeout=COMMAND_TIMEOUT_S)
            assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            results[" ".join(shlex.split(command)[:3])] = done
    finally:
        if server is not None and server.poll() is None:
            server.kill()
    return folder, results


def test_the_readme_first_hour_gives_what_it_promises(first_hour):
    from vlm3r.model.pipeline import Vlm3rPipeline
    from vlm3r.model.prompt import PromptTemplate
    from vlm3r.qa.prompts import NA_POST_PROMPT, PRE_PROMPT

    folder, results = first_hour
    assert list(results) == ["make demo", "vlm3r train --config", "vlm3r ask --model", "vlm3r eval run",
                             "curl -s --retry", f"curl -s http://127.0.0.1:{README_PORT}/v1/chat/completions",
                             "kill %1"]
    # the demo: split by scene, as the README says
    demo = results["make demo"].stdout
    assert "training conversations from synth0_0000, synth0_0001" in demo and "from synth0_0002" in demo
    # training: plain progress lines without a terminal, the model folder, the prompt it was trained with
    train = results["vlm3r train --config"]
    steps = int(re.search(r"optim\.max_steps=(\d+)", README.read_text()).group(1))
    progress = re.findall(r"^step (\d+)/(\d+)  loss \d+\.\d+  elapsed \S+  left \S+$", train.stdout + train.stderr,
                          flags=re.M)
    assert progress[0] == ("1", str(steps)) and progress[-1] == (str(steps), str(steps))
    assert train.stdout.rstrip().endswith("wrote runs/tiny")
    config = json.loads((folder / "runs/tiny/config.json").read_text())
    assert config["vlm3r"]["prompt"] == {"time_instruction": True, "pre_prompt": PRE_PROMPT,
                                         "post_prompt": NA_POST_PROMPT}
    # ask: a non-empty answer on stdout, equal to the pipeline's for the same video and question; the choice on stderr
    ask = results["vlm3r ask --model"]
    video = folder / "demo_out/synthetic/videos/train/synth0_0000.mp4"
    pipeline = Vlm3rPipeline.from_pretrained(folder / "runs/tiny")
    assert pipeline.template == PromptTemplate(True, PRE_PROMPT, NA_POST_PROMPT)
    answer = pipeline.ask(video, "How many chairs are in this room?")
    assert answer and ask.stdout == f"{answer}\n"
    assert ask.stderr == "running on cpu (chosen: --device auto) in fp32 (chosen: --dtype auto)\n"
    # eval run: the report, no paper row beside synthetic questions, the empty answers counted
    report = (folder / "runs/tiny-vsibench/report.md").read_text()
    assert "paper: VLM-3R" not in report and "Empty answers" in report
    run = results["vlm3r eval run"].stdout
    assert "Empty answers" in run and "running on cpu (chosen: --device auto) in fp32 (chosen: --dtype auto)\n" in run
    # serve: the model id /v1/models lists is the one the chat request names; the answer is ask's
    models = json.loads(results["curl -s --retry"].stdout)
    assert [m["id"] for m in models["data"]] == ["tiny"]
    chat = results[f"curl -s http://127.0.0.1:{README_PORT}/v1/chat/completions"]
    assert json.loads(chat.stdout)["choices"][0]["message"]["content"] == answer
    server = results["kill %1"]
    assert server.returncode == -signal.SIGTERM  # it stops as a process signalled stops, after cleaning up
    assert server.stderr.startswith("running on cpu (chosen: --device auto) in fp32 (chosen: --dtype auto)\n")
    assert re.search(r"POST /v1/chat/completions 200 ", server.stderr)  # one access line per request


def test_the_readme_python_snippet_runs_on_the_demo(first_hour):
    """The snippet's distance is the demo's printed one for the same two objects."""
    folder, results = first_hour
    (snippet,) = [s for s in python_snippets(README.read_text()) if "read_scene_metadata" in s]
    printed = io.StringIO()
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(snippet, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    row = re.search(r"keyboard\s+│?\s*microwave\s+│?\s*(\d+\.\d\d)", results["make demo"].stdout)
    assert f"{float(printed.getvalue()):.2f}" == row.group(1)
