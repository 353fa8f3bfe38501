"""The 3D view's geometry (issue #27, first part), checked without a browser against hand-worked cases: box edges,
view frustums, the camera path, the point budget."""

import numpy as np
import pytest

from vlm3r.errors import InputError
from vlm3r.geometry import box_corners, frustum_points, intrinsic_matrix
from vlm3r.scene.schema import CameraIntrinsics, FrameMeta, OrientedBox, SceneFrames, SceneMeta
from vlm3r.viz.scene3d import box_edges, downsample, scene_payload


def test_a_box_has_twelve_edges_of_its_side_lengths_along_its_axes():
    # a 2 x 1 x 0.5 box at (1, 2, 0.25), turned a quarter about z: its first axis points along world y
    axes = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    edges = box_edges(box_corners(np.array([1.0, 2.0, 0.25]), np.array([2.0, 1.0, 0.5]), axes))
    assert edges.shape == (12, 2, 3)
    vectors = np.abs(edges[:, 1] - edges[:, 0])
    # four edges along each axis: 2 m along world y, 1 m along world x, 0.5 m along z
    assert sorted(map(tuple, np.round(vectors, 12))) == sorted([(0.0, 2.0, 0.0)] * 4 + [(1.0, 0.0, 0.0)] * 4
                                                             + [(0.0, 0.0, 0.5)] * 4)
    # every corner by hand: x in 1 +- 0.5, y in 2 +- 1, z in 0.25 +- 0.25, each an end of three edges
    ends = np.round(edges.reshape(-1, 3), 12)
    corners = {(x, y, z) for x in (0.5, 1.5) for y in (1.0, 3.0) for z in (0.0, 0.5)}
    assert {tuple(c) for c in ends} == corners
    assert all((ends == c).all(axis=1).sum() == 3 for c in np.array(sorted(corners)))


def test_a_frustum_is_cut_at_its_depth_through_the_image_corners():
    k = intrinsic_matrix(100.0, 100.0, 50.0, 40.0)  # a 100 x 80 image
    at_origin = frustum_points(np.eye(4), k, 100, 80, 1.0)
    # by hand: corner (0, 0) is (0 - 50) / 100 = -0.5 to the left, (0 - 40) / 100 = -0.4 up, at z = 1
    assert np.allclose(at_origin, [[0, 0, 0], [-0.5, -0.4, 1], [0.5, -0.4, 1], [0.5, 0.4, 1], [-0.5, 0.4, 1]])
    # a camera at (1, 2, 3) looking along world +x (its z), its x along world -y, its y along world -z
    pose = np.eye(4)
    pose[:3, :3] = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], dtype=float)
    pose[:3, 3] = [1, 2, 3]
    moved = frustum_points(pose, k, 100, 80, 2.0)
    # camera point (x, y, z) goes to world (1 + z, 2 - x, 3 - y); at depth 2 the corners are at x = -+1, y = -+0.8
    assert np.allclose(moved, [[1, 2, 3], [3, 3, 3.8], [3, 1, 3.8], [3, 1, 2.2], [3, 3, 2.2]])


def test_the_point_budget_keeps_a_fixed_subset_in_order():
    points = np.arange(3000, dtype=float).reshape(1000, 3)
    colors = np.arange(1000 * 3).reshape(1000, 3) % 256
    kept, kept_colors = downsample(points, colors, 100)
    assert kept.shape == (100, 3) and len(np.unique(kept[:, 0])) == 100
    assert np.all(np.diff(kept[:, 0]) > 0)  # the points' own order
    rows = (kept[:, 0] / 3).astype(int)
    assert np.array_equal(kept, points[rows]) and np.array_equal(kept_colors, colors[rows])  # each with its colour
    again, _ = downsample(points, colors, 100)
    assert np.array_equal(again, kept)  # the same view every time
    assert downsample(points, colors, 1000)[0] is points  # within the budget: all of them
    with pytest.raises(InputError, match=r"^colors: one per point \(1000\), got 999$"):
        downsample(points, colors[:-1], 100)


def test_a_scene_payload_draws_every_box_and_frame():
    box = OrientedBox.from_geometry([1, 1, 0.5], [1, 1, 1], np.eye(3))
    lamp = OrientedBox.from_geometry([2, 0, 1], [0.2, 0.2, 1], np.eye(3))
    scene = SceneMeta("s0", 12.0, np.zeros(3), {"chair": 1, "lamp": 1}, {"chair": [box], "lamp": [lamp]})
    poses = []
    for x in (0.0, 1.0):
        pose = np.eye(4)
        pose[:3, 3] = [x, -1, 1.5]
        poses.append(pose)
    frames = SceneFrames("s0", CameraIntrinsics(100, 100, 50, 40), 100, 80,
                         [FrameMeta(k, pose, []) for k, pose in enumerate(poses)])
    points = np.random.default_rng(0).uniform(0, 3, (500, 3))
    payload = scene_payload(scene, points, np.zeros((500, 3), np.uint8), frames, budget=200)
    assert [label for label, _ in payload.boxes] == ["chair", "lamp"]
    assert np.allclose(payload.boxes[1][1].reshape(-1, 3).min(axis=0), [1.9, -0.1, 0.5])
    assert np.allclose(payload.camera_path, [[0, -1, 1.5], [1, -1, 1.5]])
    assert payload.frustums.shape == (2, 8, 2, 3)
    assert np.allclose(payload.frustums[1, 0], [[1, -1, 1.5], [1 - 0.125, -1 - 0.1, 1.75]])  # centre to (0, 0) at 0.25
    assert payload.points.shape == (200, 3) and payload.points.dtype == np.float32


def read_glb(data: bytes):
    """A binary glTF read by its specification: the 12-byte header, then the JSON chunk and the BIN chunk."""
    import json
    import struct

    magic, version, length = struct.unpack_from("<III", data, 0)
    assert (magic, version, length) == (0x46546C67, 2, len(data))
    json_length, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == 0x4E4F534A and json_length % 4 == 0
    gltf = json.loads(data[20:20 + json_length])
    bin_length, bin_type = struct.unpack_from("<II", data, 20 + json_length)
    assert bin_type == 0x004E4942 and 28 + json_length + bin_length == len(data)
    binary = data[28 + json_length:]

    def accessor(index: int) -> np.ndarray:
        acc = gltf["accessors"][index]
        view = gltf["bufferViews"][acc["bufferView"]]
        assert view["byteOffset"] % 4 == 0
        dtype = {5126: np.float32, 5121: np.uint8}[acc["componentType"]]
        width = {"VEC3": 3, "VEC4": 4}[acc["type"]]
        return np.frombuffer(binary, dtype, acc["count"] * width, view["byteOffset"]).reshape(-1, width)

    return gltf, accessor


def test_the_glb_holds_the_points_and_every_line_z_up_turned_y_up():
    from vlm3r.viz.scene3d import ScenePayload, glb_bytes

    box = box_edges(box_corners(np.array([1.0, 1.0, 0.5]), np.ones(3), np.eye(3)))
    path = np.array([[0.0, -1, 1.5], [1, -1, 1.5], [2, -1, 1.5]])
    points = np.array([[0.0, 0, 0], [1, 2, 3]])
    payload = ScenePayload("s0", points, np.array([[255, 0, 0], [0, 255, 0]]), [("chair", box)], path)
    gltf, accessor = read_glb(glb_bytes(payload))
    node = gltf["nodes"][0]
    assert node["name"] == "s0" and np.allclose(node["rotation"], [-np.sqrt(0.5), 0, 0, np.sqrt(0.5)])
    points_mode, boxes, walk = gltf["meshes"][0]["primitives"]  # no frames: no frustum primitive
    assert (points_mode["mode"], boxes["mode"], walk["mode"]) == (0, 1, 1)
    assert np.array_equal(accessor(points_mode["attributes"]["POSITION"]), points.astype(np.float32))
    assert np.array_equal(accessor(points_mode["attributes"]["COLOR_0"]), [[255, 0, 0, 255], [0, 255, 0, 255]])
    assert gltf["accessors"][points_mode["attributes"]["POSITION"]]["max"] == [1.0, 2.0, 3.0]
    assert np.array_equal(accessor(boxes["attributes"]["POSITION"]), box.reshape(-1, 3).astype(np.float32))
    # the camera path as segments: (p0, p1), (p1, p2)
    assert np.array_equal(accessor(walk["attributes"]["POSITION"]), path[[0, 1, 1, 2]].astype(np.float32))
    assert np.array_equal(np.unique(accessor(walk["attributes"]["COLOR_0"]), axis=0), [[40, 170, 70, 255]])


def test_a_synthetic_scene_is_viewed_from_its_files(small_synthetic):
    from vlm3r.datasets.layout import ProcessedLayout
    from vlm3r.datasets.pointcloud import read_point_cloud
    from vlm3r.scene import read_frame_metadata, read_scene_metadata
    from vlm3r.viz.scene3d import glb_bytes, scene_view

    layout = ProcessedLayout(small_synthetic, "synthetic", "train")
    name = layout.scene_names()[0]
    meta = read_scene_metadata(layout.scene_metadata_path).scenes[name]
    frames = read_frame_metadata(layout.frame_metadata_path)[name]
    cloud = read_point_cloud(layout.point_cloud_path(name))
    view = scene_view(small_synthetic / name, budget=1000)
    assert len(view.boxes) == meta.num_objects and len(view.points) == min(1000, len(cloud.xyz))
    assert np.allclose(view.camera_path, [f.camera_center for f in frames.frames])
    gltf, _ = read_glb(glb_bytes(view))
    assert [p["mode"] for p in gltf["meshes"][0]["primitives"]] == [0, 1, 1, 1]  # points, boxes, frustums, path
