"""The package's shape: no import cycle (lazy imports inside functions included), and imports only point
down the layers: errors <- utils <- geometry <- scene <- datasets, qa, model <- eval, training, serve, viz <- app
<- cli."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "vlm3r"
LAYERS = {"errors": 0, "utils": 1, "geometry": 2, "scene": 3, "datasets": 4, "qa": 4, "model": 4, "eval": 5,
          "training": 5, "serve": 5, "viz": 5, "app": 6, "cli": 7, "__main__": 8, "__init__": 0}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every vlm3r module a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vlm3r"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # `from vlm3r.x import module`
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("vlm3r"))
    return found


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in SRC.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in files and m != name} for name, path in files.items()}


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_imports_point_down_the_layers():
    def layer(module: str) -> int:
        parts = module.split(".")
        return LAYERS[parts[1] if len(parts) > 1 else "__init__"]

    upward = sorted(f"{a} -> {b}" for a, targets in graph().items() for b in targets
                    if layer(b) > layer(a) or (layer(b) == layer(a) and a.split(".")[1:2] != b.split(".")[1:2]
                                               and layer(a) == 4))
    assert not upward, "\n".join(upward)


def test_importing_vlm3r_leaves_matplotlib_alone():
    """No import-time side effects: the program's matplotlib backend stays what it chose."""
    import subprocess
    import sys

    code = ("import matplotlib; matplotlib.use('pdf'); import vlm3r.eval.report, vlm3r.viz.scene_view, "
            "vlm3r.training.trainer, vlm3r.cli.main; print(matplotlib.get_backend())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "pdf"


def test_make_test_lints_with_the_pinned_ruff_before_pytest():
    """``make test`` runs ruff (the version pinned in pyproject.toml and the constraints) before pytest, and the
    tree passes it."""
    import re
    import shutil
    import subprocess
    import sys

    root = SRC.parents[1]
    recipe = (root / "Makefile").read_text().split("\ntest:", 1)[1].split("\n\n", 1)[0]
    commands = [line.strip() for line in recipe.splitlines()[1:]]
    ruff_at = next(i for i, c in enumerate(commands) if c.startswith("$(VENV)/bin/ruff check"))
    assert ruff_at < next(i for i, c in enumerate(commands) if c.startswith("$(VENV)/bin/python -m pytest"))
    pinned = re.search(r'"ruff==([0-9.]+)"', (root / "pyproject.toml").read_text()).group(1)
    assert f"ruff=={pinned}" in (root / "requirements" / "constraints.txt").read_text().splitlines()
    ruff = Path(sys.executable).with_name("ruff")
    ruff = str(ruff) if ruff.exists() else shutil.which("ruff")
    if ruff is None:
        import pytest

        pytest.skip("ruff is not installed here (make test installs it)")
    version = subprocess.run([ruff, "--version"], capture_output=True, text=True).stdout.split()[-1]
    assert version == pinned
    result = subprocess.run([ruff, "check", "--quiet", "src", "tests", "benchmarks"], cwd=root, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]


TOKEN_IDS = {151643: "<|endoftext|>", 151644: "<|im_start|>", 151645: "<|im_end|>", 198: "\\n",
             -200: "image_token_index", -100: "ignore_index"}
TOKEN_TEXTS = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>"}
PROMPT_MODULE = SRC / "model" / "prompt.py"
CONFIG_MODULE = SRC / "model" / "config.py"


def written_token_ids(path: Path) -> list[str]:
    """``file:line value`` for each integer literal that is a token id's value (``-200`` parsed as minus 200) and
    each string that is exactly a special token's text (a lookup by name), except a config dataclass field's
    default (an annotated assignment in a class body of model/config.py)."""
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    allowed = set()
    if path == CONFIG_MODULE:
        allowed = {id(n) for cls in ast.walk(tree) if isinstance(cls, ast.ClassDef) for field in cls.body
                   if isinstance(field, ast.AnnAssign) and field.value is not None for n in ast.walk(field.value)}
    found = []
    for node in ast.walk(tree):
        value = None
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            value = -node.operand.value if type(node.operand.value) is int else None
        elif isinstance(node, ast.Constant) and not isinstance(parents.get(node), ast.UnaryOp):
            value = node.value
        hit = (type(value) is int and value in TOKEN_IDS) or (isinstance(value, str) and value in TOKEN_TEXTS)
        if hit and id(node) not in allowed:
            found.append(f"{path.relative_to(SRC.parent)}:{node.lineno} {value!r}")
    return found


def test_every_token_id_comes_from_the_prompt_module():
    """One home for the chat template and its token ids: vlm3r.model.prompt. The rule: outside model/prompt.py no
    module under src/vlm3r writes a token id, that is an integer literal with the value of Qwen2's
    <|endoftext|>/<|im_start|>/<|im_end|>/newline ids (151643-151645, 198) or of the image and ignore sentinels
    (-200, -100), nor looks a special token up by its text ("<|im_end|>" ...). Code reads the ids from the
    tokenizer through the prompt module (marker_id, eos_id, pad_id, newline_id) and the sentinels from the model's
    config (config.image_token_index, config.ignore_index), whose defaults are the prompt module's. The one
    exception is a dataclass field default in model/config.py (LlmConfig's bos/eos mirror Qwen2's config.json,
    whose values win). Found by walking the AST of every module, so docstrings and messages that name a token are
    not counted, and an unrelated number with one of these values must be written otherwise (or named in
    model/prompt.py)."""
    found = [hit for path in sorted(SRC.rglob("*.py")) if path != PROMPT_MODULE for hit in written_token_ids(path)]
    assert not found, "token ids written outside vlm3r.model.prompt:\n" + "\n".join(found)


def test_device_check_prompt_ids_are_the_prompt_modules():
    """benchmarks/device_check.py keeps its prompt's ids as data (the device machine needs no tokenizer files);
    they are the ids the prompt module gives with the bundled Qwen2 tokenizer."""
    from vlm3r.model.loading import load_tokenizer
    from vlm3r.model.prompt import IMAGE, IM_END, bundled_tokenizer_dir, chat_prompt, encode, video_question

    tree = ast.parse((SRC.parents[1] / "benchmarks" / "device_check.py").read_text())
    values = {node.targets[0].id: node.value for node in tree.body
              if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}
    data = {name: ast.literal_eval(values[name]) for name in ("PROMPT", "QUESTION", "ANSWER")}
    tokenizer = load_tokenizer(bundled_tokenizer_dir())
    pieces = chat_prompt(*video_question("These are frames of a video."))
    image = pieces.index(IMAGE)
    assert data["PROMPT"] == encode(tokenizer, pieces[:image])
    assert data["QUESTION"] == encode(tokenizer, pieces[image + 1:])
    assert data["ANSWER"] == encode(tokenizer, ["B", IM_END, "\n"])


CLI_PLUMBING = {"__init__", "errors", "main", "options"}  # error printing, shared options, the entry point


def test_cli_modules_define_only_commands():
    """A command module of ``vlm3r.cli`` defines commands and nothing else: every function or class at its top
    level is a command (wrapped by ``guarded``, which prints its errors), so what a command does is a library
    call and what it prints is built by the library (``viz.tables``); only the CLI's plumbing modules define
    helpers."""
    defined = []
    for path in sorted((SRC / "cli").glob("*.py")):
        if path.stem in CLI_PLUMBING:
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                decorators = {ast.unparse(d) for d in node.decorator_list}
                if "guarded" not in decorators:
                    defined.append(f"cli/{path.name}: {node.name}")
    assert defined == []
