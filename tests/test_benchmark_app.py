"""benchmarks/app.py stops each browser timing when the 3D view's canvas shows the picked scene; what counts as
shown is checked here on hand-made canvases (the benchmark itself needs chromium and a minute)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))  # the benchmark imports its neighbour _common
    try:
        spec = importlib.util.spec_from_file_location("benchmark_app", BENCHMARKS / "app.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def canvas(red_row: int | None) -> np.ndarray:
    """A 100 x 100 white canvas, with a box edge (one red row of 100 pixels) at ``red_row``."""
    pixels = np.full((100, 100, 3), 255, np.uint8)
    if red_row is not None:
        pixels[red_row] = (230, 60, 50)
    return pixels


def test_the_previous_scene_a_loading_canvas_and_a_new_scene(bench):
    previous = canvas(10)
    assert not bench.shows_new_scene(previous.copy(), previous)  # the old scene, still shown
    assert not bench.shows_new_scene(canvas(None), previous)  # the loader over a white canvas: no box red
    faded = canvas(None)
    faded[40:70] = (120, 200, 120)  # a scene drawn without its boxes yet (3,000 pixels changed, none red)
    assert not bench.shows_new_scene(faded, previous)
    # another scene: its box edge elsewhere (the old row turns white, the new one red: 200 pixels), and points
    # over 300 more pixels: 500 of 10,000 changed, exactly CHANGED_FRACTION (5 %)
    new = canvas(50)
    new[80:83] = (120, 90, 60)
    assert bench.shows_new_scene(new, previous)
    new[82, 0] = 255  # one changed pixel fewer: 499, under the fraction
    assert not bench.shows_new_scene(new, previous)
    # a canvas of another size (the page laid out again) is a new picture when it has box red
    assert bench.shows_new_scene(canvas(5)[:50], previous)
    assert not bench.shows_new_scene(canvas(None)[:50], previous)

