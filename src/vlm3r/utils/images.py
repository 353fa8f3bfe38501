"""Image sequences as input (docs/model.md, "Image sequences"): a folder, a glob pattern or a list of files, read
as RGB frames. A folder's images and a pattern's matches are taken in file-name order, as the reference's image demo
takes a folder's (``playground/demo/image_demo.py``: sorted by file name); files listed one by one keep the order
given. CUT3R reads the images as one recurrent sequence, so the order changes the answer."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from vlm3r.errors import InputError

# The reference reads png, jpg, jpeg, bmp and gif; webp is what phones and browsers save too, and PIL reads it.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
GLOB_CHARACTERS = "*?["


class ImageError(InputError):
    """An image sequence that cannot be read: no images, a missing or unreadable file; the message names it."""


def _by_name(paths: list[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: (p.name, str(p)))


def _images_in(folder: Path) -> list[Path]:
    found = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not found:
        raise ImageError(f"{folder}: no images in the folder ({', '.join(IMAGE_SUFFIXES)})")
    return _by_name(found)


def list_images(sources: Sequence[Path | str]) -> list[Path]:
    """The image files of ``sources``: each a folder (its images by file name), a glob pattern (its image matches
    by file name) or an image file (kept in the order given)."""
    if not sources:
        raise ImageError("no images given: a folder, a glob pattern or image files")
    images: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            images += _images_in(path)
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise ImageError(f"{path}: not an image file name ({', '.join(IMAGE_SUFFIXES)})")
            images.append(path)
        elif any(c in str(source) for c in GLOB_CHARACTERS):
            matches = [Path(m) for m in glob.glob(str(source)) if Path(m).suffix.lower() in IMAGE_SUFFIXES]
            if not matches:
                raise ImageError(f"{source}: no image matches the pattern ({', '.join(IMAGE_SUFFIXES)})")
            images += _by_name(matches)
        else:
            raise ImageError(f"{path}: no such file or folder")
    return images


def probe_image(path: Path, name: str | None = None) -> None:
    """An ``ImageError`` unless ``path`` opens as an image (its header and structure checked, pixels not decoded);
    the message names it as ``name`` (default: the path)."""
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:  # verify() raises these when damaged
        raise ImageError(f"{name or path}: not a readable image ({exc})") from exc


def read_images(paths: Sequence[Path]) -> list[np.ndarray]:
    """Each image as RGB uint8 [H, W, 3] (a GIF: its first frame; sizes may differ: each is resized for the towers
    on its own, as the reference's processor squashes each). An unreadable file is named."""
    frames = []
    for path in paths:
        try:
            with Image.open(path) as image:
                frames.append(np.asarray(image.convert("RGB")))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise ImageError(f"{path}: not a readable image ({exc})") from exc
    return frames
