"""The 3D view's geometry (issue #27, first part), checked without a browser against hand-worked cases: box edges,
view frustums, the camera path, the point budget."""

import numpy as np
import pytest

from helpers import read_glb

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


def test_colours_are_stored_linear_as_gltf_defines_them():
    from vlm3r.viz.scene3d import linear_bytes

    # by the sRGB curve: 10 / 255 is under the 0.04045 knee, so divided by 12.92 (0.77 -> 1); mid-grey 128 is
    # linear 0.2159 (55 of 255); black and white stay
    assert np.array_equal(linear_bytes([[0, 10, 128], [255, 255, 255]]), [[0, 1, 55], [255, 255, 255]])


def test_the_glb_holds_the_points_and_every_line_z_up_turned_y_up():
    from vlm3r.viz.scene3d import ScenePayload, glb_bytes, linear_bytes

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
    green = [*linear_bytes([40, 170, 70]), 255]  # stored linear, as glTF's colours are (0 and 255 stay)
    assert np.array_equal(np.unique(accessor(walk["attributes"]["COLOR_0"]), axis=0), [green])


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
    # points, then lines: room, boxes, frustums, path
    assert [p["mode"] for p in gltf["meshes"][0]["primitives"]] == [0, 1, 1, 1, 1]


def test_the_room_outline_is_the_box_around_the_points():
    from vlm3r.viz.scene3d import room_outline

    # a 4 x 3 room, 2.5 m high, sampled at its 8 corners and a few points inside
    corners = np.array([[x, y, z] for x in (0, 4) for y in (0, 3) for z in (0, 2.5)], dtype=float)
    inside = np.array([[1, 1, 1], [3, 2, 0.5], [2, 1.5, 2]], dtype=float)
    edges = room_outline(np.vstack([inside, corners]))
    lengths = sorted(np.round(np.linalg.norm(edges[:, 1] - edges[:, 0], axis=1), 9))
    assert lengths == [2.5] * 4 + [3.0] * 4 + [4.0] * 4
    assert {tuple(p) for p in np.round(edges.reshape(-1, 3), 9)} == {tuple(c) for c in corners}
    assert room_outline(corners[:2]).shape == (0, 2, 3)  # two points: no footprint


def test_an_arrow_has_its_shaft_and_two_head_strokes_in_the_vertical_plane():
    from vlm3r.viz.scene3d import arrow_lines, marker_lines

    lines = arrow_lines([0, 0, 1], [2, 0, 1], head=0.2)
    assert np.allclose(lines[0], [[0, 0, 1], [2, 0, 1]])
    # by hand: from the tip (2, 0, 1) back along -x by 0.2 cos 25 deg, up and down by 0.2 sin 25 deg
    back, up = 0.2 * np.cos(np.radians(25)), 0.2 * np.sin(np.radians(25))
    assert np.allclose(sorted(map(tuple, lines[1:, 1])), [(2 - back, 0, 1 - up), (2 - back, 0, 1 + up)])
    assert np.allclose(lines[1:, 0], [2, 0, 1])
    vertical = arrow_lines([0, 0, 0], [0, 0, 1], head=0.2)  # straight up: heads in the x-z plane
    assert np.allclose(sorted(map(tuple, vertical[1:, 1])), [(-up, 0, 1 - back), (up, 0, 1 - back)])
    with pytest.raises(InputError, match=r"two different points"):
        arrow_lines([1, 1, 1], [1, 1, 1])
    cross = marker_lines([1, 2, 3], size=0.5)
    assert np.allclose(cross, [[[0.5, 2, 3], [1.5, 2, 3]], [[1, 1.5, 3], [1, 2.5, 3]], [[1, 2, 2.5], [1, 2, 3.5]]])


def test_evidence_is_drawn_where_its_geometry_says():
    from vlm3r.viz.scene3d import arrow_lines, glb_bytes, linear_bytes, with_evidence

    chairs = [OrientedBox.from_geometry([1, 1, 0.5], [1, 1, 1], np.eye(3)),
              OrientedBox.from_geometry([3, 1, 0.5], [1, 1, 1], np.eye(3))]
    scene = SceneMeta("s0", 12.0, np.zeros(3), {"chair": 2}, {"chair": chairs})
    frames = SceneFrames("s0", CameraIntrinsics(100, 100, 50, 40), 100, 80,
                         [FrameMeta(7, np.eye(4), []), FrameMeta(9, np.eye(4), [])])
    points = np.random.default_rng(0).uniform(0, 3, (50, 3))
    base = scene_payload(scene, points, np.zeros((50, 3), np.uint8), frames)
    evidence = {"objects": [["chair", 1]], "frames": [9],
                "segments": [{"label": "1.0 m", "from": [1.5, 1, 0.5], "to": [2.5, 1, 0.5]}],
                "arrows": [{"label": "standing -> facing", "from": [0, 0, 0], "to": [1, 0, 0]}],
                "path": [[0, 0, 0], [1, 0, 0], [1, 1, 0]], "points": [{"label": "camera", "at": [0, 0, 0]}]}
    view = with_evidence(base, scene, frames, evidence)
    assert np.allclose(view.highlights["evidence_boxes"], box_edges(chairs[1].corners))
    assert np.allclose(view.highlights["segments"], [[[1.5, 1, 0.5], [2.5, 1, 0.5]]])
    assert np.allclose(view.highlights["arrows"], arrow_lines([0, 0, 0], [1, 0, 0]))
    assert np.allclose(view.highlights["path"], [[[0, 0, 0], [1, 0, 0]], [[1, 0, 0], [1, 1, 0]]])
    assert view.highlights["markers"].shape == (3, 2, 3) and view.highlights["evidence_frustums"].shape == (8, 2, 3)
    assert view.notes == ["object: chair #1", "frame 9", "length: 1.0 m", "direction: standing -> facing",
                          "route: 3 points", "point: camera"]
    assert base.highlights == {}  # the scene's own view is left as it was
    gltf, accessor = read_glb(glb_bytes(view))
    colors = {tuple(accessor(p["attributes"]["COLOR_0"])[0]) for p in gltf["meshes"][0]["primitives"][1:]}
    grey, red = (*linear_bytes([185] * 3), 255), (*linear_bytes([230, 60, 50]), 255)
    assert grey in colors and red not in colors  # the other boxes greyed
    with pytest.raises(InputError, match=r"^q3: objects\[0\] is 'chair' #2, but scene s0 has 2 'chair' box"):
        with_evidence(base, scene, frames, {"objects": [["chair", 2]]}, where="q3")
    with pytest.raises(InputError, match=r"^q3: frames\[0\] is frame 8, which scene s0's frame metadata"):
        with_evidence(base, scene, frames, {"frames": [8]}, where="q3")
