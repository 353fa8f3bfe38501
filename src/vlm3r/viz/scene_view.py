"""A scene at a glance: top-down map (point cloud, labelled boxes, camera path) beside a sheet of sampled frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from scipy.spatial import ConvexHull

from vlm3r.datasets.layout import ProcessedLayout
from vlm3r.datasets.pointcloud import read_point_cloud
from vlm3r.errors import Vlm3rError
from vlm3r.scene import read_frame_metadata, read_scene_metadata
from vlm3r.utils.fileio import atomic_path
from vlm3r.utils.frames import NUM_FRAMES


class SceneViewError(Vlm3rError):
    """A scene that cannot be drawn; the message names the file (or SCENE_DIR) and what it lacks."""


def find_scene(scene_dir: Path | str) -> tuple[ProcessedLayout, str]:
    """Resolve ``DATASET_ROOT/SCENE`` to the layout (dataset name and split) whose metadata lists the scene."""
    scene_dir = Path(scene_dir)
    root, scene = scene_dir.parent, scene_dir.name
    candidates = sorted((root / "metadata").glob("*/*_metadata_*.json"))
    for path in candidates:
        split = path.parent.name
        suffix = f"_metadata_{split}.json"
        if not path.name.endswith(suffix) or path.name.endswith(f"_frame{suffix}"):
            continue
        layout = ProcessedLayout(root, path.name[: -len(suffix)], split)
        if scene in read_scene_metadata(path).scenes:
            return layout, scene
    raise SceneViewError(f"{scene_dir}: no scene {scene!r} in the metadata under {root / 'metadata'} "
                         f"({len(candidates)} metadata files looked at; SCENE_DIR is DATASET_ROOT/SCENE_NAME)")


def render_scene_overview(layout: ProcessedLayout, scene: str, out: Path | str, max_frames: int = NUM_FRAMES) -> Figure:
    """Write a PNG: the top-down map on the left, a contact sheet of up to ``max_frames`` frames on the right;
    returns the figure (what it draws can be read back)."""
    scenes = read_scene_metadata(layout.scene_metadata_path).scenes
    if scene not in scenes:
        raise SceneViewError(f"{layout.scene_metadata_path}: no scene {scene!r} in this scene metadata")
    meta = scenes[scene]
    frames = read_frame_metadata(layout.frame_metadata_path).get(scene)
    if frames is None:
        raise SceneViewError(f"{layout.frame_metadata_path}: no frames of scene {scene!r} in this frame metadata")
    fig = Figure(figsize=(20, 9), dpi=100)
    FigureCanvasAgg(fig)  # drawn off-screen; the program's own matplotlib backend is left alone
    grid = fig.add_gridspec(1, 2, width_ratios=[1, 1.25], wspace=0.05)
    _draw_map(fig.add_subplot(grid[0]), layout, meta, frames)
    _draw_sheet(fig.add_subplot(grid[1]), layout, frames, max_frames)
    fig.suptitle(f"{scene} ({meta.dataset}, {meta.room_size:.1f} m², {meta.num_objects} objects, "
                 f"{len(frames.frames)} sampled frames)", fontsize=14)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, bbox_inches="tight")
    return fig


def _draw_map(ax, layout, meta, frames) -> None:
    ply = layout.point_cloud_path(meta.scene_name)
    if ply.is_file():
        points = read_point_cloud(ply)
        step = max(1, len(points.xyz) // 60_000)
        xyz = points.xyz[::step]
        low = xyz[:, 2] < 0.1
        ax.scatter(xyz[low, 0], xyz[low, 1], s=0.2, c="#d9d4c7", rasterized=True)
        ax.scatter(xyz[~low, 0], xyz[~low, 1], s=0.2, c="#8a8a8a", rasterized=True)
    cmap = colormaps["tab20"]
    for k, (category, boxes) in enumerate(sorted(meta.objects.items())):
        for box in boxes:
            corners = box.corners[:, :2]
            hull = corners[ConvexHull(corners).vertices]
            ax.fill(hull[:, 0], hull[:, 1], color=cmap(k % 20), alpha=0.45, lw=1.2, ec=cmap(k % 20))
            ax.text(*box.centroid[:2], category, fontsize=7, ha="center", va="center")
    if frames.frames:
        centers = np.array([f.camera_center for f in frames.frames])
        forward = np.array([f.camera_to_world[:3, 2] for f in frames.frames])
        ax.plot(centers[:, 0], centers[:, 1], "-", color="#c0392b", lw=1.5, label="camera path")
        ax.quiver(centers[:, 0], centers[:, 1], forward[:, 0], forward[:, 1], color="#c0392b", scale=18, width=0.003)
        ax.scatter(*centers[0, :2], s=60, c="#27ae60", zorder=5, label="first frame")
        for i in (0, len(centers) // 2, len(centers) - 1):
            ax.annotate(str(frames.frames[i].frame_id), centers[i, :2], fontsize=7, color="#c0392b")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title("top-down map")


def _draw_sheet(ax, layout, frames, max_frames: int) -> None:
    chosen = frames.frames
    if len(chosen) > max_frames:
        chosen = [chosen[i] for i in np.linspace(0, len(chosen) - 1, max_frames, dtype=int)]
    thumbs = []
    for frame in chosen:
        path = layout.root / frame.file_path_color if frame.file_path_color else None
        if path is None or not path.is_file():
            continue
        try:
            with Image.open(path) as image:
                thumbs.append((frame.frame_id, np.asarray(image.convert("RGB").resize((160, 120)))))
        except OSError as exc:  # PIL's UnidentifiedImageError for a file that is no image
            raise SceneViewError(f"{path}: colour frame {frame.frame_id} of scene {frames.scene_name!r} is not a "
                                 f"readable image ({exc})") from exc
    ax.axis("off")
    ax.set_title("sampled frames (video frame index)")
    if not thumbs:
        return
    columns = 6
    rows = -(-len(thumbs) // columns)
    sheet = np.full((rows * 124, columns * 164, 3), 255, dtype=np.uint8)
    for i, (frame_id, thumb) in enumerate(thumbs):
        r, c = divmod(i, columns)
        sheet[r * 124:r * 124 + 120, c * 164:c * 164 + 160] = thumb
        ax.text(c * 164 + 4, r * 124 + 14, str(frame_id), color="white", fontsize=7,
                bbox={"facecolor": "black", "alpha": 0.5, "pad": 1, "lw": 0})
    ax.imshow(sheet)
