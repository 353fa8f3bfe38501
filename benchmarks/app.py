"""``vlm3r app``'s 3D view (issue #27): time from picking a scene to its scene drawn in the browser, and the GLB's
size, for a synthetic scene and for one with a ScanNet-sized point cloud (300,000 points; cut to the budget).
The issue's targets: a drawn scene within 1 s of the request and a payload under 10 MB.

Server side: building the view from the scene's files and its GLB (``scene_view`` + ``glb_bytes``), and the app's
whole handler (``show_scene``: the same plus the framed images and the GLB file). In the browser, where Debian's
chromium and chromedriver are installed: the app is started in this process on a dataset holding both scenes,
headless chromium (WebGL through SwiftShader, as tests/test_app_browser.py runs it, browser cache off) picks one
scene then the other in the Scenes tab, and each pick is timed until the canvas shows the box red and is no
longer the previous scene's picture (median of ``--repeats``; the canvas is read by screenshots, so a time is
the end of the first screenshot that showed the scene, its own cost included: one screenshot of a drawn canvas is
timed and printed). The GLB's arrival is read from the page's Resource Timing.

Usage: python benchmarks/app.py [--points 300000] [--repeats 5] [--no-browser]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote

import numpy as np

from _common import report
from vlm3r.datasets.pointcloud import LabeledPoints, read_point_cloud, write_point_cloud
from vlm3r.datasets.synthetic.generate import SynthConfig, generate_dataset
from vlm3r.app.browser import (BOX_RED, BROWSER_ARGS, COLOR_TOLERANCE, browser_missing, canvas_pixels,
                               color_pixels, free_port, offered, start_browser, type_into, wait_for)
from vlm3r.viz.scene3d import POINT_BUDGET, glb_bytes, scene_view

SECONDS_TARGET, MEGABYTES_TARGET = 1.0, 10.0  # the targets for a drawn scene and its payload
SERVER_REPEATS = 5  # server-side timings: median of this many
WAIT_S = 60  # seconds a pick may take to show its scene before the benchmark fails (cold shaders: several s)
POLL_S = 0.02  # pause between two reads of the page
SETTLE_S = 1.0  # after a scene is drawn, time left to finish (fades) before its picture is the next "previous"
CHANGED_FRACTION = 0.05  # a canvas differing from the previous scene's in this share of pixels shows another one
MB = 1e6


def timed_view(scene_dir: Path) -> dict:
    """Median milliseconds of ``scene_view`` and of it with ``glb_bytes`` (``SERVER_REPEATS`` runs), the GLB's MB."""
    built, total = [], []
    for _ in range(SERVER_REPEATS):
        start = time.perf_counter()
        view = scene_view(scene_dir)
        built.append(time.perf_counter() - start)
        data = glb_bytes(view)
        total.append(time.perf_counter() - start)
    return {"points_sent": len(view.points), "boxes": len(view.boxes), "frames": len(view.camera_path),
            "view_ms": 1000 * statistics.median(built), "server_ms": 1000 * statistics.median(total),
            "glb_mb": len(data) / MB}


def timed_handler(catalog, label: str, workdir: Path) -> float:
    """Median milliseconds of the app's Scenes handler (``show_scene``) for one scene."""
    from vlm3r.app.views import show_scene

    times = []
    for _ in range(SERVER_REPEATS):
        start = time.perf_counter()
        show_scene(catalog, label, workdir)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def make_dataset(root: Path, points: int) -> tuple[str, str, int]:
    """Two synthetic scenes under ``root``; the second's point cloud replaced by ``points`` points resampled over
    its own room (a ScanNet-sized cloud). Returns the two scene names and the first one's point count."""
    layout = generate_dataset(root, 2, 0, SynthConfig())
    small, big = layout.scene_names()
    cloud = read_point_cloud(layout.point_cloud_path(big))
    rng = np.random.default_rng(0)
    picked = rng.integers(0, len(cloud.xyz), points)
    jitter = rng.normal(0, 0.01, (points, 3))
    write_point_cloud(layout.point_cloud_path(big), LabeledPoints(
        cloud.xyz[picked] + jitter, cloud.rgb[picked], cloud.label[picked], cloud.instance_id[picked]))
    return small, big, len(read_point_cloud(layout.point_cloud_path(small)).xyz)






def shows_new_scene(pixels: np.ndarray, previous: np.ndarray) -> bool:
    """Whether a canvas shows a drawn scene other than the one of ``previous`` (its picture): box red in it, and
    ``CHANGED_FRACTION`` of its pixels away from the previous picture (a loading overlay has no red; the previous
    scene, still shown, has not changed)."""
    if color_pixels(pixels, BOX_RED) == 0:
        return False
    if pixels.shape != previous.shape:
        return True
    changed = np.any(np.abs(pixels.astype(int) - previous.astype(int)) > COLOR_TOLERANCE, axis=-1)
    return changed.mean() >= CHANGED_FRACTION




class Page:
    """The app's page in headless chromium, read and driven as tests/test_app_browser.py does."""

    def __init__(self, url: str):
        self.driver = start_browser("about:blank")
        # every pick downloads its GLB, as a first visit does (the same view is the same file, hence URL)
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        self.driver.get(url)

    def close(self) -> None:
        self.driver.quit()

    def wait_for(self, check, what: str):
        """``check()``'s first truthy value within ``WAIT_S``, read every ``POLL_S``."""
        return wait_for(check, what, WAIT_S, POLL_S)

    def canvas(self) -> np.ndarray:
        return canvas_pixels(self.driver, "scene-3d")

    def shown_scene(self) -> str:
        """The first line of the Scenes tab's summary: the scene's name."""
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, "scene-info").text.splitlines()[0].strip()

    def wait_drawn(self, previous: np.ndarray | None, what: str) -> np.ndarray:
        """The canvas once it shows a drawn scene other than ``previous``'s, then settled."""
        blank = np.zeros((1, 1, 3), np.uint8)
        self.wait_for(lambda: shows_new_scene(self.canvas(), blank if previous is None else previous), what)
        time.sleep(SETTLE_S)
        return self.canvas()

    def pick(self, scene: str, previous: np.ndarray) -> dict:
        """Pick ``scene`` (typed into the dropdown, its option clicked, as ``browser.choose`` does) and time it from
        the click until its summary is shown, its GLB has arrived and its canvas shows it."""
        type_into(self.driver, "scene-pick", scene)
        clicked = []

        def click() -> bool:  # retried when the list renders again between finding the option and the click
            option = offered(self.driver, "scene-pick", scene)
            if option is None:
                return False
            self.driver.execute_script("performance.clearResourceTimings()")
            clicked[:] = [time.time(), time.perf_counter()]
            option.click()
            return True

        self.wait_for(click, f"{scene!r} offered and picked")
        clicked_epoch, start = clicked
        self.wait_for(lambda: self.shown_scene() == scene, f"{scene}'s summary")
        text_s = time.perf_counter() - start
        screenshots = []

        def drawn() -> bool:
            shot_start = time.perf_counter()
            shown = shows_new_scene(self.canvas(), previous)
            screenshots.append(time.perf_counter() - shot_start)
            return shown

        self.wait_for(drawn, f"{scene} drawn in the 3D view")
        drawn_s = time.perf_counter() - start
        glb = self.driver.execute_script(
            "return performance.getEntriesByType('resource').filter(e => e.name.endsWith('.glb'))"
            ".map(e => [e.name, performance.timeOrigin + e.responseEnd, e.encodedBodySize])")
        if len(glb) != 1:
            raise RuntimeError(f"picking {scene}: expected one GLB download, the page fetched {len(glb)}")
        url, received_epoch_ms, body_bytes = glb[0]
        return {"text_ms": 1000 * text_s, "glb_received_ms": received_epoch_ms - 1000 * clicked_epoch,
                "drawn_ms": 1000 * drawn_s, "last_screenshot_ms": 1000 * screenshots[-1],
                "glb_file": Path(unquote(url)).name, "glb_downloaded_bytes": body_bytes}


def browser_runs(root: Path, scenes: list[str], repeats: int) -> tuple[dict[str, list[dict]], float]:
    """Each scene picked ``repeats`` times, alternately, after one untimed round (shaders compiled, GLBs
    written), and the median milliseconds of one screenshot of a drawn canvas; the app and the browser run here."""
    from vlm3r.app.server import AppOptions, start_app

    running = start_app(AppOptions(data=[root], port=free_port()))
    page = None
    try:
        page = Page(running.url)
        page.wait_for(lambda: page.shown_scene() == scenes[0], f"the first scene {scenes[0]}'s summary")
        previous = page.wait_drawn(None, f"the first scene {scenes[0]} drawn")
        idle = []
        for _ in range(SERVER_REPEATS):  # one screenshot of a drawn, unchanging canvas: the reads' own cost
            start = time.perf_counter()
            page.canvas()
            idle.append(time.perf_counter() - start)
        runs: dict[str, list[dict]] = {scene: [] for scene in scenes}
        for round_ in range(repeats + 1):
            for scene in [*scenes[1:], scenes[0]]:
                run = page.pick(scene, previous)
                run["glb_file_bytes"] = (running.workdir / run["glb_file"]).stat().st_size
                previous = page.wait_drawn(previous, f"{scene} drawn")
                if round_:  # the first round is untimed
                    runs[scene].append(run)
        return runs, 1000 * statistics.median(idle)
    finally:
        if page is not None:
            page.close()
        running.close()


def median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=5, help="timed picks of each scene in the browser")
    parser.add_argument("--no-browser", action="store_true", help="time the server side only")
    args = parser.parse_args()
    missing = "--no-browser given" if args.no_browser else browser_missing()
    rows, runs, screenshot_ms = [], {}, None
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "synthetic"
        small, big, small_points = make_dataset(root, args.points)
        from vlm3r.app.catalog import load_catalog

        catalog = load_catalog([root], [], [])
        handler_dir = Path(folder) / "handler"
        handler_dir.mkdir()
        for scene, label, points in [(small, "synthetic", small_points), (big, "ScanNet-sized", args.points)]:
            server = timed_view(root / scene)
            rows.append({"scene": label, "name": scene, "points": points, "points sent": server["points_sent"],
                         "server ms": server["server_ms"],
                         "app handler ms": timed_handler(catalog, scene, handler_dir),
                         "GLB MB": server["glb_mb"], "GLB received ms": "not measured",
                         "drawn ms": "not measured", "within targets": "not measured"})
        if missing is None:
            runs, screenshot_ms = browser_runs(root, [small, big], args.repeats)
            for row, scene in zip(rows, [small, big]):
                drawn = median(runs[scene], "drawn_ms")
                megabytes = runs[scene][-1]["glb_file_bytes"] / MB
                row.update({"GLB MB": megabytes, "GLB received ms": median(runs[scene], "glb_received_ms"),
                            "drawn ms": drawn,
                            "within targets": drawn / 1000 < SECONDS_TARGET and megabytes < MEGABYTES_TARGET})
    if missing is not None:
        print(f"request-to-drawn time not measured: {missing}; only the server side is timed")
    else:
        print(f"browser: headless chromium, SwiftShader (software) WebGL; medians of {args.repeats} picks; a drawn "
              f"time includes the screenshot that saw it (one of a drawn canvas: {screenshot_ms:.0f} ms)")
    report("app", rows, {"targets": {"seconds": SECONDS_TARGET, "megabytes": MEGABYTES_TARGET},
                         "point_budget": POINT_BUDGET,
                         "browser": ({"not_measured": missing} if missing is not None else
                                     {"webgl": "SwiftShader (software)", "args": BROWSER_ARGS,
                                      "repeats": args.repeats, "screenshot_ms": screenshot_ms,
                                      "runs": runs})})


if __name__ == "__main__":
    main()
