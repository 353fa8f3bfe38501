"""Reading videos as VLM-3R samples them: ``num_frames`` decoded frames spread by ``np.linspace`` over the whole
video (the sampling the benchmarks' "frame k of N" refers to, docs/design.md, model §1.1), with memory bounded
by the sampled frames whatever the video's length. No torch here: dataset tools and DataLoader workers
import it cheaply."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import av
import numpy as np

from vlm3r.errors import Vlm3rError
from vlm3r.utils.frames import NUM_FRAMES, linspace_indices

DEFAULT_FPS = 24.0  # frames/s assumed when a stream states no rate
# FFmpeg's demuxers of still images (PNG, JPEG, WebP, BMP, TIFF, ... are "<codec>_pipe"); GIF and APNG hold
# animations, so they are stills only with one frame
IMAGE_FORMATS = ("image2", "image2pipe")
ANIMATED_IMAGE_FORMATS = ("gif", "apng")
SHOWN_BAD = 20  # bad videos (or the samples and files that need them) named in one error; the rest are counted
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm")  # names taken for videos when listing files


class VideoError(Vlm3rError):
    """A video that cannot be read; the message names the file."""


def require_file(path: Path) -> None:
    """A ``VideoError`` unless ``path`` is a file: saying so when it is a folder (a video is one file) or missing."""
    if path.is_dir():
        raise VideoError(f"{path}: a folder, not a video file (name one video in it)")
    if not path.is_file():
        raise VideoError(f"{path}: no such file")


def _open_video(path: Path):
    container = av.open(str(path))
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: no video stream")
    return container, container.streams.video[0]


def probe_video(path: Path | str) -> None:
    """Raise ``VideoError`` unless ``path`` is a file whose container opens and has a video stream, and is not a
    still image (reads the header only: cheap enough to check every video of a dataset before work starts)."""
    path = Path(path)
    require_file(path)
    try:
        container, stream = _open_video(path)
        with container:
            name = container.format.name
            if name in IMAGE_FORMATS or name.endswith("_pipe") or (name in ANIMATED_IMAGE_FORMATS
                                                                   and _at_most_one_frame(container, stream)):
                raise VideoError(f"{path}: a still image ({name}), not a video")
    except VideoError:
        raise
    except (av.FFmpegError, ValueError) as exc:
        raise VideoError(f"{path}: not a readable video ({exc})") from exc


def unreadable_videos(videos: Iterable[Path | str]) -> dict[Path, str]:
    """Why each video of ``videos`` that ``probe_video`` refuses cannot be read, in first-seen order, each file
    probed once: the check a dataset or a benchmark runs on every video before any model work."""
    reasons: dict[Path, str] = {}
    seen: set[Path] = set()
    for video in map(Path, videos):
        if video in seen:
            continue
        seen.add(video)
        try:
            probe_video(video)
        except VideoError as exc:
            reasons[video] = str(exc)
    return reasons


def first_listed(items: Sequence[str], shown: int = SHOWN_BAD) -> str:
    """The first ``shown`` of ``items`` joined by "; ", with " ..." when there are more."""
    return "; ".join(items[:shown]) + (" ..." if len(items) > shown else "")


def _at_most_one_frame(container, stream) -> bool:
    """Whether an image container holds one frame (its header's count, else its first two packets)."""
    if stream.frames:
        return stream.frames <= 1
    packets = (p for p in container.demux(stream) if p.size)
    return next(packets, None) is None or next(packets, None) is None


def count_frames(path: Path | str) -> int:
    """Frames of the first video stream, counted from its packets without decoding them (discarded packets, as
    an edit list marks them, are not frames)."""
    path = Path(path)
    try:
        container, stream = _open_video(path)
        with container:
            return sum(1 for packet in container.demux(stream)
                       if packet.size and not getattr(packet, "is_discard", False))
    except VideoError:
        raise
    except (av.FFmpegError, ValueError) as exc:
        raise VideoError(f"{path}: not a readable video ({exc})") from exc


def frame_rate(path: Path | str) -> float:
    """The first video stream's average frame rate from the header (``DEFAULT_FPS`` when it states none)."""
    path = Path(path)
    try:
        container, stream = _open_video(path)
        with container:
            return float(stream.average_rate or 0) or DEFAULT_FPS
    except VideoError:
        raise
    except (av.FFmpegError, ValueError) as exc:
        raise VideoError(f"{path}: not a readable video ({exc})") from exc


def sampled_timing(path: Path | str, num_frames: int = NUM_FRAMES) -> tuple[np.ndarray, float]:
    """(the indices ``read_video_frames`` samples, the frame rate), from the packets and the header alone: the
    time instruction's facts without decoding (they differ only for a video whose decoder drops frames)."""
    path = Path(path)
    require_file(path)
    total = count_frames(path)
    if not total:
        raise VideoError(f"{path}: the video has no frames")
    return linspace_indices(total, num_frames), frame_rate(path)


def upright_frame(rgb: np.ndarray, rotation: float) -> np.ndarray:
    """A decoded frame [H, W, 3] turned as its video's display matrix says (``rotation``: PyAV's
    ``VideoFrame.rotation``, degrees counter-clockwise, e.g. -90 for a phone held upright), to the nearest quarter
    turn, as players and FFmpeg's autorotation show it."""
    turns = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k=turns)) if turns else rgb


def _decode_sampled(path: Path, indices: np.ndarray, upright: bool = True) -> tuple[np.ndarray | None, int, float]:
    """Decode the whole stream once, converting to RGB only the frames at ``indices`` (increasing), written
    straight into the output array (``upright``: turned as the video's rotation says); returns it (None if no
    frame was sampled), the number of frames decoded and the frame rate."""
    slot = {int(index): k for k, index in enumerate(indices)}
    out = None
    container, stream = _open_video(path)
    with container:
        stream.thread_type = "AUTO"  # frame and slice threads: same pixels, faster
        fps = float(stream.average_rate or 0) or DEFAULT_FPS
        decoded = 0
        for frame in container.decode(stream):
            if decoded in slot:
                rgb = frame.to_ndarray(format="rgb24")
                if upright and frame.rotation:
                    rgb = upright_frame(rgb, frame.rotation)
                if out is None:
                    out = np.empty((len(indices), *rgb.shape), dtype=np.uint8)
                if rgb.shape != out.shape[1:]:
                    raise VideoError(f"{path}: frame {decoded} is {rgb.shape[1]}x{rgb.shape[0]}, earlier sampled "
                                     f"frames {out.shape[2]}x{out.shape[1]}")
                out[slot[decoded]] = rgb
            decoded += 1
    return out, decoded, fps


def read_video_frames(path: Path | str, num_frames: int = NUM_FRAMES,
                      upright: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    """(frames uint8 [F, H, W, 3], their indices in the video, the video's frame rate): ``num_frames`` spread
    by linspace over all decoded frames. Only the sampled frames are kept while decoding, so memory is that of
    the ``num_frames`` frames, whatever the video's length. ``upright``: each frame turned as the video's rotation
    (a phone's display matrix) says, as players show it; False: as stored, as the reference's decoder (decord)
    reads it, sideways for a phone video held upright."""
    path = Path(path)
    require_file(path)
    total = count_frames(path)
    try:
        indices = linspace_indices(total, num_frames)
        frames, decoded, fps = _decode_sampled(path, indices, upright)
        if decoded != total:  # the decoder dropped or added frames: sample what it gives
            total = decoded
            indices = linspace_indices(total, num_frames)
            frames, decoded, fps = _decode_sampled(path, indices, upright)
    except (av.FFmpegError, IndexError) as exc:
        raise VideoError(f"{path}: not a readable video ({exc})") from exc
    if not total:
        raise VideoError(f"{path}: the video has no frames")
    if decoded != total:
        raise VideoError(f"{path}: decoding gives {total} frames, then {decoded}")
    return frames, indices, fps
