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


SHOWN_SCENES = 20  # scene names listed when SCENE_DIR names none of them
LABEL_GID = "object label"  # the object labels of the map, as a caller finds them among the axes' texts
LABEL_PAD_PX = 2.0  # pixels kept free around each label
LABEL_RING_STEP = 1.2  # text heights between the rings of places tried around a label's object
LABEL_RINGS = 16  # rings tried before the place that overlaps least is taken
LABEL_DIRECTIONS = 16  # places tried on each ring


class SceneViewError(Vlm3rError):
    """A scene that cannot be drawn; the message names the file (or SCENE_DIR) and what it lacks."""


def dataset_scenes(root: Path | str) -> list[tuple[ProcessedLayout, list[str]]]:
    """Every (layout, its scene names) of a processed dataset root, from the scene metadata files under
    ``ROOT/metadata/SPLIT/`` (frame metadata files aside), in file-name order."""
    root = Path(root)
    found = []
    for path in sorted((root / "metadata").glob("*/*_metadata_*.json")):
        split = path.parent.name
        suffix = f"_metadata_{split}.json"
        if not path.name.endswith(suffix) or path.name.endswith(f"_frame{suffix}"):
            continue
        found.append((ProcessedLayout(root, path.name[: -len(suffix)], split), list(read_scene_metadata(path).scenes)))
    return found


def find_scene(scene_dir: Path | str) -> tuple[ProcessedLayout, str]:
    """Resolve ``DATASET_ROOT/SCENE`` to the layout (dataset name and split) whose metadata lists the scene."""
    scene_dir = Path(scene_dir)
    root, scene = scene_dir.parent, scene_dir.name
    listed = dataset_scenes(root)
    for layout, scenes in listed:
        if scene in scenes:
            return layout, scene
    known = sorted(name for _, scenes in listed for name in scenes)
    shown = ", ".join(known[:SHOWN_SCENES]) or "none"
    if len(known) > SHOWN_SCENES:
        shown += f", ... ({len(known)} in all)"
    raise SceneViewError(f"{scene_dir}: no scene {scene!r} in the metadata under {root / 'metadata'} "
                         f"({len(listed)} metadata files looked at; SCENE_DIR is DATASET_ROOT/SCENE_NAME); "
                         f"the scenes there: {shown}")


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
    labels = []
    for k, (category, boxes) in enumerate(sorted(meta.objects.items())):
        for box in boxes:
            corners = box.corners[:, :2]
            hull = corners[ConvexHull(corners).vertices]
            ax.fill(hull[:, 0], hull[:, 1], color=cmap(k % 20), alpha=0.45, lw=1.2, ec=cmap(k % 20))
            labels.append((category, box.centroid[:2]))
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
    place_labels(ax, labels)


def place_labels(ax, labels: list[tuple[str, np.ndarray]]) -> None:
    """Write each (text, point) label at its point, or, where it would overlap a label already placed (or the
    frame numbers or the legend), at the nearest free place around it on rings ``LABEL_RING_STEP`` text heights
    apart, joined to its point by a thin line. Labels are tagged ``LABEL_GID``. The axes' limits are fixed
    first, since where a label lands on the page depends on them."""
    fig = ax.figure
    ax.autoscale_view()
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())
    ax.apply_aspect()
    renderer = fig.canvas.get_renderer()
    taken = [t.get_window_extent(renderer) for t in ax.texts]
    if ax.get_legend() is not None:
        taken.append(ax.get_legend().get_window_extent(renderer))
    frame = ax.get_window_extent(renderer)
    to_data = ax.transData.inverted()
    angles = np.linspace(0, 2 * np.pi, LABEL_DIRECTIONS, endpoint=False)
    for text, point in labels:
        label = ax.text(*point, text, fontsize=7, ha="center", va="center", gid=LABEL_GID)
        box = label.get_window_extent(renderer).padded(LABEL_PAD_PX)
        step = LABEL_RING_STEP * box.height
        offsets = [(0.0, 0.0)] + [(r * step * np.cos(a), r * step * np.sin(a))
                                  for r in range(1, LABEL_RINGS + 1) for a in angles]
        best, best_overlap = (0.0, 0.0), np.inf
        for dx, dy in offsets:
            moved = box.translated(dx, dy)
            if not (frame.x0 <= moved.x0 and moved.x1 <= frame.x1 and frame.y0 <= moved.y0 and moved.y1 <= frame.y1):
                continue
            overlap = sum(_overlap_area(moved, other) for other in taken)
            if overlap < best_overlap:
                best, best_overlap = (dx, dy), overlap
            if overlap == 0:
                break
        if best != (0.0, 0.0):
            centre = ax.transData.transform(point)
            label.set_position(to_data.transform(centre + np.array(best)))
            ax.annotate("", xy=point, xytext=label.get_position(),
                        arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.35", "shrinkA": 4, "shrinkB": 0})
        taken.append(box.translated(*best))


def _overlap_area(a, b) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0.0) * max(height, 0.0)


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
