"""The package's shape: no import cycle (lazy imports inside functions included), and imports only point
down the layers: errors <- utils <- geometry <- scene <- datasets, qa, model <- eval, training, serve, viz <- cli."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "vlm3r"
LAYERS = {"errors": 0, "utils": 1, "geometry": 2, "scene": 3, "datasets": 4, "qa": 4, "model": 4, "eval": 5,
          "training": 5, "serve": 5, "viz": 5, "cli": 6, "__main__": 7, "__init__": 0}


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
    assert commands[0].startswith("$(VENV)/bin/ruff check") and "pytest" in commands[1]
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
