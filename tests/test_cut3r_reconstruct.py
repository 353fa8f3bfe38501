"""``vlm3r cut3r reconstruct`` as a user meets it: a file without heads named in one line, a plain coloured PLY
whose colours are the sampled frames' pixels (recomputed here from the video as the spec preprocesses it), the
cameras file, the units and the per-frame progress."""

import json

import numpy as np
import pytest
import torch
from helpers import write_tiny_cut3r_with_heads, write_video
from typer.testing import CliRunner

from vlm3r.cli.main import app
from vlm3r.model.cut3r import Cut3r

UNITS = "metres, as CUT3R's metric-scale training gives them, not calibrated"
SIDE = 432  # CUT3R's input size: every frame gives SIDE x SIDE points


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "100000"})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny CUT3R with heads (.safetensors + its JSON architecture) and a 6-frame noise video."""
    root = tmp_path_factory.mktemp("reconstruct")
    write_tiny_cut3r_with_heads(root)
    write_video(root / "room.mp4", np.random.default_rng(0).integers(0, 255, (6, 48, 64, 3), dtype=np.uint8))
    return root


def test_a_cut3r_file_without_heads_is_named_in_one_line(files, tmp_path):
    """A training run's cut3r.pth (the token path only, written by the same writer) is refused in one line that
    says which heads are missing and which file has them, instead of 228 key names."""
    from vlm3r.model.config import Vlm3rConfig
    from vlm3r.model.saving import write_cut3r

    cut3r = Vlm3rConfig.tiny().cut3r
    weights = {k: v for k, v in Cut3r(cut3r, with_heads=False).state_dict().items()}
    path = write_cut3r(cut3r, weights, tmp_path / "cut3r.pth")
    result = run("cut3r", "reconstruct", files / "room.mp4", "--cut3r", path, "--out", tmp_path / "room.ply")
    assert result.exit_code == 1
    # 228 = 3 DPTs x 64 (act_postprocess 14; scratch 44: layer1-4_rn 4, refinenet1-4 4 x 10; head 6),
    # final_transform 2 blocks x 16, pose_head 4 (two Linear layers)
    assert result.stderr == (f"error: {path}: has no reconstruction heads (downstream_head: dpt_self, "
                             "final_transform, dpt_cross, dpt_rgb, pose_head; 228 weights): it holds only the token "
                             "path VLM-3R uses, as a training run's cut3r.pth does. Reconstructing needs the heads: "
                             "use the released cut3r_512_dpt_4_64.pth, which has them\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut3r.pth"]


def spec_colors(video, num_frames: int) -> np.ndarray:
    """Each CUT3R input pixel's colour, [F * SIDE * SIDE, 3] in frame, row, column order, as the spec
    preprocesses (cut3r §3): every frame decoded, linspace sampling, PIL bicubic 384x384, x / 255, (x - 0.5) / 0.5,
    bilinear (align_corners False) to 432, then back to 0-255."""
    import av
    import torch.nn.functional as F
    from PIL import Image

    with av.open(str(video)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]
    chosen = [decoded[i] for i in np.linspace(0, len(decoded) - 1, num_frames, dtype=int)]
    small = np.stack([np.asarray(Image.fromarray(f).resize((384, 384), Image.BICUBIC)) for f in chosen])
    x = (torch.from_numpy(small).permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.5
    x = F.interpolate(x, size=(SIDE, SIDE), mode="bilinear", align_corners=False)
    return ((x.permute(0, 2, 3, 1).reshape(-1, 3).numpy() + 1) * 127.5).round().astype(np.uint8)


def test_reconstruct_writes_plain_colored_points_cameras_and_units(files, tmp_path):
    from plyfile import PlyData

    out = tmp_path / "room.ply"
    result = run("cut3r", "reconstruct", files / "room.mp4", "--cut3r", files / "cut3r.safetensors", "--config",
                 files / "config.json", "--out", out, "--frames", "2", "--keep", "1")
    assert result.exit_code == 0, result.output
    count = 2 * SIDE * SIDE  # every point kept, none left out (a finite model)
    header = out.read_bytes().split(b"end_header\n")[0].decode().splitlines()
    assert header == ["ply", "format binary_little_endian 1.0", f"element vertex {count}", "property float x",
                      "property float y", "property float z", "property uchar red", "property uchar green",
                      "property uchar blue"]
    vertex = PlyData.read(str(out))["vertex"].data
    colors = np.stack([vertex[c] for c in ("red", "green", "blue")], axis=1)
    np.testing.assert_array_equal(colors, spec_colors(files / "room.mp4", 2))
    cameras = json.loads(out.with_suffix(".cameras.json").read_text())
    poses = np.array(cameras["camera_to_world"])
    assert cameras["units"] == UNITS and cameras["frame_indices"] == [0, 5]
    assert cameras["positions"] == poses[:, :3, 3].tolist()
    path = np.linalg.norm(poses[1, :3, 3] - poses[0, :3, 3])
    assert result.stdout.endswith(f"wrote {count} points to {out} and 2 cameras to {out.with_suffix('.cameras.json')}"
                                  f" (camera path {path:.2f} m)\nunits: {UNITS}\n")
    help_text = " ".join(run("cut3r", "reconstruct", "--help").stdout.split())
    assert f"Coordinates are in {UNITS} (points and camera positions alike)." in help_text


def test_kept_points_are_the_most_confident_in_frame_order():
    from vlm3r.model.cut3r.reconstruction import most_confident

    confidence = np.array([0.1, 0.9, 0.5, 0.7, np.nan, 0.8])
    finite = np.isfinite(confidence)
    # half of 6 = 3 points: 0.9 (1), 0.8 (5), 0.7 (3), written in their input order
    assert most_confident(confidence, finite, 0.5).tolist() == [1, 3, 5]
    assert most_confident(confidence, finite, 1.0).tolist() == [0, 1, 2, 3, 5]  # the non-finite one left out


def test_progress_counts_frames(files, tmp_path):
    from vlm3r.viz.reconstruction import reconstruct_to_files

    calls = []
    result = reconstruct_to_files(files / "room.mp4", files / "cut3r.safetensors", tmp_path / "r.ply",
                                  files / "config.json", frames=2, keep=0.01,
                                  progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 2), (1, 2), (2, 2)] and len(result.points) == round(0.01 * 2 * SIDE * SIDE)
