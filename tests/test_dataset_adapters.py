"""Dataset adapters: miniature scenes written in each dataset's raw formats (by the tests themselves), turned
into scene and frame metadata and checked against the known geometry; malformed inputs are reported per scene."""

import io
import json
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image
from helpers import write_video
from plyfile import PlyData, PlyElement

from vlm3r.datasets.metadata import build_dataset_metadata
from vlm3r.datasets.scannet.adapter import list_scenes
from vlm3r.errors import SceneBuildError
from vlm3r.scene import read_frame_metadata, read_scene_metadata

# ------------------------------------------------------------------------------------------------ ScanNet
COLOR_W, COLOR_H, DEPTH_W, DEPTH_H = 128, 96, 64, 48
K_COLOR = np.array([[100.0, 0, 64, 0], [0, 110.0, 48, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
ALIGN = np.array([[0.0, -1, 0, 1.0], [1, 0, 0, 2.0], [0, 0, 1, 0.5], [0, 0, 0, 1]])  # 90 degrees about z, shift
#: raw-frame boxes (centre, full lengths) of the objects, their aggregation labels, segments and group ids
OBJECTS = [("table", (1.0, 0.5, 0.4), (1.2, 0.6, 0.8), [10, 11], 0),
           ("chair", (-1.0, 0.8, 0.45), (0.5, 0.4, 0.9), [20], 1),
           ("desk", (0.5, -1.5, 0.35), (1.0, 0.5, 0.7), [50], 3),  # merged into table
           ("wall", (0.0, 2.0, 1.25), (4.0, 0.1, 2.5), [30], 2)]  # not an object category
FLOOR = (0.0, 0.0, -0.005), (4.0, 4.0, 0.01)


def box_points(center, lengths, n=6):
    """Points on a grid through the box, corners included."""
    axes = [np.linspace(c - length / 2, c + length / 2, n) for c, length in zip(center, lengths)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)


def write_sens(path, poses, truncate=0):
    """A .sens file as ScanNet's SensorData writes it (version 4, jpeg colour, zlib depth)."""
    out = io.BytesIO()
    out.write(struct.pack("<I", 4))
    name = b"StructureSensor"
    out.write(struct.pack("<Q", len(name)) + name)
    for matrix in (K_COLOR, np.eye(4), K_COLOR / 2 + np.diag([0, 0, 0.5, 0.5]), np.eye(4)):
        out.write(struct.pack("<16f", *matrix.flatten()))
    out.write(struct.pack("<ii", 2, 1) + struct.pack("<4I", COLOR_W, COLOR_H, DEPTH_W, DEPTH_H))
    out.write(struct.pack("<f", 1000.0) + struct.pack("<Q", len(poses)))
    for i, pose in enumerate(poses):
        color = io.BytesIO()
        Image.fromarray(np.full((COLOR_H, COLOR_W, 3), (i * 5 % 255, 80, 160), np.uint8)).save(color, "JPEG")
        depth = zlib.compress(np.full((DEPTH_H, DEPTH_W), 1000 + i, "<u2").tobytes())
        out.write(struct.pack("<16f", *np.asarray(pose, dtype=np.float32).flatten()))
        out.write(struct.pack("<4Q", i * 33, i * 33, len(color.getvalue()), len(depth)))
        out.write(color.getvalue() + depth)
    data = out.getvalue()
    path.write_bytes(data[:len(data) - truncate])


def mask_for(frame):
    """320x240 mask: table (group 0) and chair (group 1) rectangles that move with the frame."""
    mask = np.zeros((240, 320), np.uint16)
    mask[20:40, 10 + frame:30 + frame] = 0 + 1
    mask[100:150, 200:260] = 1 + 1
    return mask


def raw_pose(i):
    pose = np.eye(4)
    pose[:3, 3] = (0.1 * i, 0.0, 1.5)
    return pose


def write_scannet_scene(root, scene, frames=40, bad=None):
    """A miniature ScanNet scan. ``bad``: None, "truncated", "inf_pose", "empty_instance" or "no_aggregation"."""
    scan = root / "scans" / scene
    scan.mkdir(parents=True)
    (scan / f"{scene}.txt").write_text("sceneType = Living room\naxisAlignment = "
                                       + " ".join(f"{v:g}" for v in ALIGN.flatten()) + "\n")
    pieces, segments = [], []
    for _, center, lengths, segs, _ in OBJECTS:
        pts = box_points(center, lengths)
        pieces.append(pts)
        segments += [segs[k % len(segs)] for k in range(len(pts))]
    floor = box_points(*FLOOR, n=21)
    pieces.append(floor)
    segments += [40] * len(floor)
    xyz = np.concatenate(pieces)
    vertex = np.empty(len(xyz), [("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"),
                                 ("blue", "u1"), ("alpha", "u1")])
    vertex["x"], vertex["y"], vertex["z"] = xyz.T
    vertex["red"] = vertex["green"] = vertex["blue"] = vertex["alpha"] = 200
    PlyData([PlyElement.describe(vertex, "vertex")]).write(str(scan / f"{scene}_vh_clean_2.ply"))
    (scan / f"{scene}_vh_clean_2.0.010000.segs.json").write_text(json.dumps({"segIndices": segments}))
    groups = [{"id": gid, "objectId": gid, "label": label, "segments": segs} for label, _, _, segs, gid in OBJECTS]
    if bad == "empty_instance":
        groups.append({"id": 4, "objectId": 4, "label": "lamp", "segments": [999]})
    if bad != "no_aggregation":
        (scan / f"{scene}.aggregation.json").write_text(json.dumps({"segGroups": groups}))
    poses = [raw_pose(i) for i in range(frames)]
    if bad == "inf_pose":
        poses[frames - 1] = np.full((4, 4), -np.inf)
    write_sens(scan / f"{scene}.sens", poses, truncate=500 if bad == "truncated" else 0)
    with zipfile.ZipFile(scan / f"{scene}_2d-instance-filt.zip", "w") as archive:
        for i in range(frames):
            png = io.BytesIO()
            Image.fromarray(mask_for(i)).save(png, "PNG")
            archive.writestr(f"instance-filt/{i}.png", png.getvalue())


def aligned_box(center, lengths):
    """Centre and footprint/height of a raw axis-aligned box after the axis alignment (90 degrees about z)."""
    c = ALIGN[:3, :3] @ np.asarray(center) + ALIGN[:3, 3]
    return c, sorted(lengths[:2]), lengths[2]


def test_scannet_scene_to_metadata(tmp_path):
    root, out = tmp_path / "scannet", tmp_path / "processed"
    write_scannet_scene(root, "scene0001_00")
    result = build_dataset_metadata("scannet", root, out, "val")
    assert result.scenes == ["scene0001_00"] and not result.failures
    scene = read_scene_metadata(result.layout.scene_metadata_path).scenes["scene0001_00"]
    assert scene.object_counts == {"chair": 1, "table": 2}
    for label, center, lengths, _, gid in OBJECTS[:3]:
        name = "table" if label == "desk" else label
        box = next(b for b in scene.objects[name] if b.instance_id == gid)
        want_center, footprint, height = aligned_box(center, lengths)
        np.testing.assert_allclose(box.centroid, want_center, atol=1e-5)
        lengths_found = np.asarray(box.axes_lengths)
        vertical = np.argmax(np.abs(np.asarray(box.normalized_axes).reshape(3, 3)[:, 2]))
        assert lengths_found[vertical] == pytest.approx(height, abs=1e-5)
        assert sorted(np.delete(lengths_found, vertical)) == pytest.approx(footprint, abs=1e-5)
    assert scene.room_size == pytest.approx(16.0, rel=0.05)  # the 4 x 4 m floor
    assert scene.video_path == "videos/val/scene0001_00.mp4"

    frames = read_frame_metadata(result.layout.frame_metadata_path)["scene0001_00"]
    expected_ids = np.unique(np.linspace(0, 39, 32, dtype=int)).tolist()
    assert [f.frame_id for f in frames.frames] == expected_ids
    assert (frames.image_width, frames.image_height) == (640, 480)
    k = frames.intrinsics
    assert (k.fx, k.fy, k.cx, k.cy) == pytest.approx((500.0, 550.0, 320.0, 240.0))  # colour camera x 5
    for frame in frames.frames:
        np.testing.assert_allclose(frame.camera_to_world, ALIGN @ raw_pose(frame.frame_id), atol=1e-6)
        boxes = {b.instance_id: tuple(b.bbox) for b in frame.bboxes_2d}
        i = frame.frame_id
        assert boxes == {0: (2 * (10 + i), 40, 2 * (30 + i) - 1, 79), 1: (400, 200, 519, 299)}
    depth = np.asarray(Image.open(out / frames.frames[3].file_path_depth))
    assert depth.shape == (DEPTH_H, DEPTH_W) and int(depth[0, 0]) == 1000 + frames.frames[3].frame_id
    import av

    with av.open(str(out / scene.video_path)) as video:
        stream = video.streams.video[0]
        assert (stream.width, stream.height, float(stream.average_rate)) == (640, 480, 24.0)
        assert sum(1 for _ in video.decode(stream)) == 40
    from vlm3r.qa.generate import generate, load_scenes
    from vlm3r.qa.tasks import select_tasks

    records, _ = generate(load_scenes(out), select_tasks("all"), seed=0)  # the adapter's output feeds the tasks
    types = {r.question_type for r in records}
    assert {"object_counting", "object_size_estimation", "room_size_estimation"} <= types
    assert any(t.startswith("camera_") for t in types)


def test_scannet_failures_are_named_and_runs_resume(tmp_path):
    root, out = tmp_path / "scannet", tmp_path / "processed"
    write_scannet_scene(root, "scene0000_00")
    broken = {"scene0002_00": "truncated", "scene0003_00": "inf_pose", "scene0004_00": "empty_instance",
              "scene0005_00": "no_aggregation"}
    for scene, bad in broken.items():
        write_scannet_scene(root, scene, bad=bad)
    result = build_dataset_metadata("scannet", root, out, "train", workers=2)
    assert result.scenes == ["scene0000_00"] and sorted(result.failures) == sorted(broken)
    reasons = result.failures
    assert "scene0002_00.sens: truncated in frame 39" in reasons["scene0002_00"]
    assert "frame 39: camera_to_world is not finite" in reasons["scene0003_00"]
    assert "segGroup 4 (lamp) is empty" in reasons["scene0004_00"]
    assert "scene0005_00.aggregation.json: no such file (object annotation)" in reasons["scene0005_00"]
    assert json.loads(result.failures_path.read_text()) == reasons
    for scene in broken:  # nothing of a failed scene is left looking complete
        assert not result.layout.point_cloud_path(scene).exists() and not result.layout.pose_dir(scene).exists()
    done = result.layout.point_cloud_path("scene0000_00")
    stamp = done.stat().st_mtime_ns
    import shutil

    shutil.rmtree(root / "scans" / "scene0005_00")
    write_scannet_scene(root, "scene0005_00")  # fixed
    again = build_dataset_metadata("scannet", root, out, "train")
    assert again.prepared == ["scene0005_00"] and again.scenes == ["scene0000_00", "scene0005_00"]
    assert done.stat().st_mtime_ns == stamp  # the finished scene was not redone
    assert len(read_scene_metadata(again.layout.scene_metadata_path).scenes) == 2


def test_metadata_command_for_synthetic_and_scannet(tmp_path, small_synthetic):
    from typer.testing import CliRunner

    from vlm3r.cli.main import app
    from vlm3r.datasets.layout import ProcessedLayout

    layout = ProcessedLayout(small_synthetic, "synthetic", "train")
    before = layout.scene_metadata_path.read_bytes()
    rebuilt = CliRunner().invoke(app, ["scenes", "metadata", "--dataset", "synthetic", "--root", str(small_synthetic)])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert layout.scene_metadata_path.read_bytes() == before  # the generator's path: same bytes
    write_scannet_scene(tmp_path / "raw", "scene0007_00", frames=8)
    write_scannet_scene(tmp_path / "raw", "scene0008_00", frames=8, bad="inf_pose")
    result = CliRunner().invoke(app, ["scenes", "metadata", "--dataset", "scannet", "--root", str(tmp_path / "raw"),
                                      "--split", "val", "--out", str(tmp_path / "out"), "--workers", "2"])
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "1 scenes in the metadata" in text and "failed scene0008_00" in text
    wrong = CliRunner().invoke(app, ["scenes", "metadata", "--dataset", "synthetic", "--root", str(small_synthetic),
                                     "--out", str(tmp_path / "elsewhere")])
    assert wrong.exit_code == 1 and "--out must be --root" in " ".join(wrong.output.split())


def test_a_root_without_scenes_is_named(tmp_path):
    with pytest.raises(SceneBuildError, match=f"{tmp_path / 'scans'}: no such folder of ScanNet scenes, and no scene "
                                              f"list {tmp_path / 'scannetv2_train.txt'}"):
        list_scenes(tmp_path, "train")
    (tmp_path / "scannetv2_train.txt").write_bytes(b"\xff\xfe scene0000_00")
    with pytest.raises(SceneBuildError, match="scannetv2_train.txt: the ScanNet scene list is not readable text"):
        list_scenes(tmp_path, "train")


# ------------------------------------------------------------------------------------------------ ARKitScenes
ARKIT_SIZE, ARKIT_K = (64, 48), np.array([[50.0, 0, 32], [0, 50.0, 24], [0, 0, 1]])
#: label, centre, lengths, yaw (degrees); the sink is not an object category, so chair = 0 and tv = 1
ARKIT_OBJECTS = [("sink", (0.0, 1.5, 0.8), (0.5, 0.4, 0.2), 0.0),
                 ("chair", (1.0, 0.0, 0.45), (0.5, 0.5, 0.9), 30.0),
                 ("tv_monitor", (-1.0, 0.5, 1.2), (0.8, 0.1, 0.5), -20.0)]
#: camera-to-world rotation of a camera looking along +y (OpenCV axes: x right, y down, z forward)
LOOK_Y = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])


def yaw_axes(degrees):
    a = np.radians(degrees)
    return np.array([[np.cos(a), np.sin(a), 0], [-np.sin(a), np.cos(a), 0], [0, 0, 1]])


def arkit_object_points(center, lengths, yaw):
    return box_points((0, 0, 0), lengths, n=8) @ yaw_axes(yaw) + np.asarray(center)


def arkit_pose(i):
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = LOOK_Y, (-0.5 + 0.1 * i, -3.0, 1.0)
    return pose


def write_arkit_scan(root, video_id, frames=12, bad=None):
    """A miniature 3DOD scan (frames in <id>_frames/); frame 5 lacks its depth image. ``bad``: None,
    "no_annotation", "degenerate_box" or "bad_traj"."""
    from scipy.spatial.transform import Rotation

    scan = root / "Validation" / video_id
    data = []
    for k, (label, center, lengths, yaw) in enumerate(ARKIT_OBJECTS):
        size = [0.0, 0.4, 0.2] if bad == "degenerate_box" and label == "chair" else list(lengths)
        data.append({"uid": f"u{k}", "label": label, "segments": {"obbAligned": {
            "centroid": list(center), "axesLengths": size, "normalizedAxes": yaw_axes(yaw).flatten().tolist()}}})
    (scan / f"{video_id}_frames").mkdir(parents=True)
    if bad != "no_annotation":
        (scan / f"{video_id}_3dod_annotation.json").write_text(json.dumps({"data": data}))
    xyz = np.concatenate([arkit_object_points(c, s, y) for _, c, s, y in ARKIT_OBJECTS] +
                         [box_points((0, 0, -0.005), (4, 4, 0.01), n=21)])
    vertex = np.empty(len(xyz), [("x", "f4"), ("y", "f4"), ("z", "f4")])
    vertex["x"], vertex["y"], vertex["z"] = xyz.T
    PlyData([PlyElement.describe(vertex, "vertex")]).write(str(scan / f"{video_id}_3dod_mesh.ply"))
    frames_dir = scan / f"{video_id}_frames"
    for sub in ("lowres_wide", "lowres_depth", "lowres_wide_intrinsics"):
        (frames_dir / sub).mkdir()
    lines = []
    for i in range(frames):
        stamp = f"{1000.0 + 0.1 * i:.3f}"
        c2w = arkit_pose(i)
        rotvec = Rotation.from_matrix(c2w[:3, :3].T).as_rotvec()
        translation = -c2w[:3, :3].T @ c2w[:3, 3]
        lines.append(" ".join(f"{v:.9f}" for v in [1000.0 + 0.1 * i + 0.004, *rotvec, *translation]))
        name = f"{video_id}_{stamp}"
        Image.fromarray(np.full((48, 64, 3), 20 * i, np.uint8)).save(frames_dir / "lowres_wide" / f"{name}.png")
        if i != 5:
            Image.fromarray(np.full((48, 64), 10000, np.uint16)).save(frames_dir / "lowres_depth" / f"{name}.png")
        (frames_dir / "lowres_wide_intrinsics" / f"{name}.pincam").write_text("64 48 50 50 32 24")
    if bad == "bad_traj":
        lines[3] = lines[3].rsplit(" ", 1)[0] + " inf"
    (frames_dir / "lowres_wide.traj").write_text("\n".join(lines) + "\n")


def expected_mask_boxes(frame_pose):
    """Independent expectation: bounds of each object's vertices projected into the frame (pixel = floor)."""
    boxes = {}
    for instance_id, (_, center, lengths, yaw) in enumerate(ARKIT_OBJECTS[1:]):
        pts = arkit_object_points(center, lengths, yaw)
        cam = (pts - frame_pose[:3, 3]) @ frame_pose[:3, :3]
        u = np.floor(50 * cam[:, 0] / cam[:, 2] + 32).astype(int)
        v = np.floor(50 * cam[:, 1] / cam[:, 2] + 24).astype(int)
        ok = (cam[:, 2] > 0) & (u >= 0) & (u < 64) & (v >= 0) & (v < 48)
        if ok.any():
            boxes[instance_id] = (u[ok].min(), v[ok].min(), u[ok].max(), v[ok].max())
    return boxes


def test_arkitscenes_scan_to_metadata(tmp_path):
    root, out = tmp_path / "arkit", tmp_path / "processed"
    write_arkit_scan(root, "41069021")
    write_arkit_scan(root, "41069025")  # same visit: one of the two is used
    (root / "metadata.csv").write_text("video_id,visit_id,fold\n41069021,420683,Validation\n"
                                       "41069025,420683,Validation\n47333431,NA,Validation\n")
    result = build_dataset_metadata("arkitscenes", root, out, "val")
    assert len(result.scenes) == 1 and not result.failures
    name = result.scenes[0]
    scene = read_scene_metadata(result.layout.scene_metadata_path).scenes[name]
    assert scene.object_counts == {"chair": 1, "tv": 1}
    for instance_id, (label, center, lengths, yaw) in enumerate(ARKIT_OBJECTS[1:]):
        box = scene.objects["tv" if label == "tv_monitor" else label][0]
        assert box.instance_id == instance_id
        np.testing.assert_allclose(box.centroid, center)
        np.testing.assert_allclose(box.axes_lengths, lengths)
        np.testing.assert_allclose(box.normalized_axes, yaw_axes(yaw), atol=1e-12)
    frames = read_frame_metadata(result.layout.frame_metadata_path)[name]
    assert [f.frame_id for f in frames.frames] == list(range(11))  # 11 usable frames: all sampled, in order
    assert (frames.image_width, frames.image_height) == ARKIT_SIZE
    assert (frames.intrinsics.fx, frames.intrinsics.cx) == (50.0, 32.0)
    for frame in frames.frames:
        capture = frame.frame_id + (frame.frame_id >= 5)  # capture index: frame 5 had no depth
        np.testing.assert_allclose(frame.camera_to_world, arkit_pose(capture), atol=1e-6)
        assert {b.instance_id: tuple(b.bbox) for b in frame.bboxes_2d} == expected_mask_boxes(arkit_pose(capture))
    assert any(len(f.bboxes_2d) == 2 for f in frames.frames)


@pytest.mark.parametrize("bad, reason", [("no_annotation", "_3dod_annotation.json: no such file (the 3D box "
                                                           "annotation)"),
                                         ("degenerate_box", "data[1] (chair, uid u1): degenerate box"),
                                         ("bad_traj", "lowres_wide.traj: line 4: expected 7 finite numbers")])
def test_arkitscenes_failures_are_named(tmp_path, bad, reason):
    write_arkit_scan(tmp_path / "arkit", "40000001", frames=6, bad=bad)
    result = build_dataset_metadata("arkitscenes", tmp_path / "arkit", tmp_path / "out", "val")
    assert result.scenes == [] and reason in result.failures["40000001"]


# ------------------------------------------------------------------------------------------------ ScanNet++
PP_K = np.array([[100.0, 0, 80], [0, 100.0, 60], [0, 0, 1]])  # for the 160x120 iPhone frames
#: label, group id, centre, lengths, yaw; windows are not object categories
PP_OBJECTS = [("table", 3, (0.8, 0.5, 0.4), (1.0, 0.6, 0.8), 10.0),
              ("office chair", 7, (-0.9, 0.2, 0.5), (0.5, 0.5, 1.0), -30.0),
              ("window", 9, (0.0, 2.0, 1.5), (1.0, 0.05, 1.0), 0.0)]


def deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def pp_pose(i):
    pose = arkit_pose(i)
    pose[2, 3] = 1.2
    return pose


def write_scannetpp_scene(root, scene, frames=10, bad=None, per_frame_depth=False, jpeg_frames=False):
    """A miniature ScanNet++ scene with an iPhone capture (rgb.mkv, or extracted JPEGs); frame 4's pose is NaN.
    ``bad``: None, "no_anno", "truncated_depth"."""
    scans, iphone = root / "data" / scene / "scans", root / "data" / scene / "iphone"
    scans.mkdir(parents=True)
    iphone.mkdir()
    pieces, segments, groups = [], [], []
    for k, (label, gid, center, lengths, yaw) in enumerate(PP_OBJECTS):
        pts = arkit_object_points(center, lengths, yaw)
        pieces.append(pts)
        segments += [100 + 2 * k + (j % 2) for j in range(len(pts))]
        groups.append({"id": gid, "objectId": gid, "label": label, "segments": [100 + 2 * k, 101 + 2 * k],
                       "obb": {"centroid": list(center), "axesLengths": list(lengths),
                               "normalizedAxes": yaw_axes(yaw).flatten().tolist()}})
    floor = box_points((0, 0, -0.005), (4, 4, 0.01), n=21)
    xyz = np.concatenate(pieces + [floor])
    segments += [1] * len(floor)
    vertex = np.empty(len(xyz), [("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"),
                                 ("blue", "u1")])
    vertex["x"], vertex["y"], vertex["z"] = xyz.T
    vertex["red"] = vertex["green"] = vertex["blue"] = 90
    PlyData([PlyElement.describe(vertex, "vertex")]).write(str(scans / "mesh_aligned_0.05.ply"))
    (scans / "segments.json").write_text(json.dumps({"segIndices": segments}))
    if bad != "no_anno":
        (scans / "segments_anno.json").write_text(json.dumps({"segGroups": groups}))
    poses = {}
    for i in range(frames):
        pose = np.full((4, 4), np.nan) if i == 4 else pp_pose(i)
        poses[f"frame_{i:06d}"] = {"aligned_pose": pose.tolist(), "intrinsic": PP_K.tolist()}
    (iphone / "pose_intrinsic_imu.json").write_text(json.dumps(poses))  # NaN as Python's json writes it
    depth = np.full((frames, 192, 256), 10.0, "<f4")
    if per_frame_depth:
        blob = b"".join(len(b).to_bytes(4, "little") + b for b in (deflate(d.tobytes()) for d in depth))
    else:
        blob = deflate(depth.tobytes())
    (iphone / "depth.bin").write_bytes(blob[:-50] if bad == "truncated_depth" else blob)
    if jpeg_frames:
        (iphone / "rgb").mkdir()
        for i in range(frames):
            Image.fromarray(np.full((120, 160, 3), 10 * i, np.uint8)).save(iphone / "rgb" / f"frame_{i:06d}.jpg")
        return
    write_video(iphone / "rgb.mkv", np.stack([np.full((120, 160, 3), 10 * i, np.uint8) for i in range(frames)]), fps=60)


def pp_expected_boxes(pose):
    k = np.diag([4.0, 4.0, 1.0]) @ PP_K  # the 640x480 frames
    boxes = {}
    for label, gid, center, lengths, yaw in PP_OBJECTS[:2]:
        cam = (arkit_object_points(center, lengths, yaw) - pose[:3, 3]) @ pose[:3, :3]
        u = np.floor(k[0, 0] * cam[:, 0] / cam[:, 2] + k[0, 2]).astype(int)
        v = np.floor(k[1, 1] * cam[:, 1] / cam[:, 2] + k[1, 2]).astype(int)
        ok = (cam[:, 2] > 0) & (u >= 0) & (u < 640) & (v >= 0) & (v < 480)
        if ok.any():
            boxes[gid] = (u[ok].min(), v[ok].min(), u[ok].max(), v[ok].max())
    return boxes


@pytest.mark.parametrize("per_frame_depth, jpeg_frames", [(False, False), (True, True)])
def test_scannetpp_scene_to_metadata(tmp_path, per_frame_depth, jpeg_frames):
    root, out = tmp_path / "scannetpp", tmp_path / "processed"
    write_scannetpp_scene(root, "0a5c013435", per_frame_depth=per_frame_depth, jpeg_frames=jpeg_frames)
    result = build_dataset_metadata("scannetpp", root, out, "train")
    assert result.scenes == ["0a5c013435"] and not result.failures
    scene = read_scene_metadata(result.layout.scene_metadata_path).scenes["0a5c013435"]
    assert scene.object_counts == {"chair": 1, "table": 1}
    for label, gid, center, lengths, yaw in PP_OBJECTS[:2]:
        box = scene.objects["chair" if label == "office chair" else label][0]
        assert box.instance_id == gid
        np.testing.assert_allclose(box.centroid, center)
        np.testing.assert_allclose(box.axes_lengths, lengths)
    frames = read_frame_metadata(result.layout.frame_metadata_path)["0a5c013435"]
    assert [f.frame_id for f in frames.frames] == [0, 1, 2, 3, 5, 6, 7, 8, 9]  # frame 4 has no pose
    assert (frames.intrinsics.fx, frames.intrinsics.cx, frames.intrinsics.cy) == (400.0, 320.0, 240.0)
    for frame in frames.frames:
        np.testing.assert_allclose(frame.camera_to_world, pp_pose(frame.frame_id), atol=1e-9)
        assert {b.instance_id: tuple(b.bbox) for b in frame.bboxes_2d} == pp_expected_boxes(pp_pose(frame.frame_id))
    assert all(len(f.bboxes_2d) == 2 for f in frames.frames)  # table and chair in view, the window is no object
    depth = np.asarray(Image.open(out / frames.frames[0].file_path_depth))
    assert depth.shape == (480, 640) and int(depth[0, 0]) == 10000


@pytest.mark.parametrize("bad, reason", [("no_anno", "segments_anno.json: no such file (object annotation)"),
                                         ("truncated_depth", "depth.bin: frame 9 truncated")])
def test_scannetpp_failures_are_named(tmp_path, bad, reason):
    write_scannetpp_scene(tmp_path / "pp", "bad0000000", bad=bad, per_frame_depth=True)
    result = build_dataset_metadata("scannetpp", tmp_path / "pp", tmp_path / "out", "train")
    assert result.scenes == [] and reason in result.failures["bad0000000"]
