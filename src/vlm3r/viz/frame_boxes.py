"""A scene's sampled frames with their 2D instance boxes drawn and labelled by category (the app's frame strip,
beside the 3D view), so that a person sees which object each box of the frame metadata is."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw

from vlm3r.datasets.layout import ProcessedLayout
from vlm3r.scene.schema import SceneFrames, SceneMeta
from vlm3r.viz.scene_view import SceneViewError

STRIP_FRAMES = 8  # frames shown when no question names its own
BOX_LINE_PX = 2  # width of a drawn 2D box, in pixels
HIGHLIGHT_LINE_PX = 4  # width of the box of an object a question is about
CATEGORY_COLORS = colormaps["tab20"]  # one colour per category, by its place in the scene's category order


def category_colors(scene: SceneMeta) -> dict[str, tuple[int, int, int]]:
    """A colour (RGB, 0-255) per category of the scene, in its sorted category order."""
    return {category: tuple(int(255 * c) for c in CATEGORY_COLORS(k % CATEGORY_COLORS.N)[:3])
            for k, category in enumerate(sorted(scene.objects))}


def framed_images(layout: ProcessedLayout, scene: SceneMeta, frames: SceneFrames, frame_ids: list | None = None,
                  highlight: set[tuple[str, int]] | None = None, count: int = STRIP_FRAMES
                  ) -> list[tuple[Image.Image, str]]:
    """(image, caption) of frames with their 2D boxes: ``frame_ids`` in their order, else ``count`` frames spread
    evenly over the sampled ones (over those showing a ``highlight`` object, when some do). Boxes of ``highlight``
    objects ((category, index) pairs) are drawn thicker. A
    frame id the metadata lacks, or a colour file that is missing or no image, is an error naming it.

    Args:
        layout: the processed dataset the frames' colour files are relative to.
        scene: the scene's metadata (instance id -> category).
        frames: its sampled frames' metadata.
        frame_ids: the frames to show (a question's), or None.
        highlight: the objects a question is about, drawn thicker.
        count: how many frames to show without ``frame_ids``.
    """
    by_id = {str(f.frame_id): f for f in frames.frames}
    owner = {box.instance_id: (category, index) for category, boxes in scene.objects.items()
             for index, box in enumerate(boxes) if box.instance_id is not None}
    highlight = highlight or set()
    if frame_ids is None:
        showing = [f for f in frames.frames if any(owner.get(i) in highlight for i in f.visible_instances)]
        pool = showing or frames.frames  # the frames that show a highlighted object, when some do
        chosen = [pool[i] for i in np.unique(np.linspace(0, len(pool) - 1, count).astype(int))]
    else:
        missing = [f for f in frame_ids if str(f) not in by_id]
        if missing:
            raise SceneViewError(f"{layout.frame_metadata_path}: scene {scene.scene_name!r} has no frame(s) "
                                 f"{', '.join(map(str, missing))}")
        chosen = [by_id[str(f)] for f in frame_ids]
    colors = category_colors(scene)
    out = []
    for frame in chosen:
        path = layout.root / frame.file_path_color if frame.file_path_color else None
        if path is None or not path.is_file():
            raise SceneViewError(f"{layout.frame_metadata_path}: frame {frame.frame_id} of scene "
                                 f"{scene.scene_name!r}: colour file {path} is missing")
        try:
            with Image.open(path) as opened:
                image = opened.convert("RGB")
        except OSError as exc:  # PIL's UnidentifiedImageError for a file that is no image
            raise SceneViewError(f"{path}: colour frame {frame.frame_id} of scene {scene.scene_name!r} is not a "
                                 f"readable image ({exc})") from exc
        draw = ImageDraw.Draw(image)
        for box in frame.bboxes_2d:
            if box.instance_id not in owner:
                continue
            category, index = owner[box.instance_id]
            width = HIGHLIGHT_LINE_PX if (category, index) in highlight else BOX_LINE_PX
            draw.rectangle(box.bbox, outline=colors[category], width=width)
            draw.text((box.bbox[0] + 3, box.bbox[1] + 2), category, fill=colors[category])
        out.append((image, f"frame {frame.frame_id}"))
    return out
