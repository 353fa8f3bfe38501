"""The ray caster against hand-worked views, and the metadata builder against hand-made inputs and broken files."""

import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import SEED
from vlm3r.datasets.builder import build_scene_frames, build_scene_meta, mask_boxes
from vlm3r.errors import SceneBuildError
from vlm3r.datasets.layout import ProcessedLayout
from vlm3r.datasets.pointcloud import LabeledPoints, PointCloudError, write_point_cloud
from vlm3r.datasets.synthetic.furnish import FurnishedRoom, Part, SceneObject
from vlm3r.datasets.synthetic.generate import box_surface_points, scene_name
from vlm3r.datasets.synthetic.render import Renderer, scene_geometry
from vlm3r.datasets.synthetic.room import Room
from vlm3r.datasets.synthetic.trajectory import look_at_pose
from vlm3r.geometry import intrinsic_matrix

STRUCTURE = np.array([[0.8, 0.8, 0.8], [0.5, 0.4, 0.3], [0.9, 0.9, 0.9]])


def one_box_room(room=Room(6.0, 6.0, 3.0)):
    center, size = np.array([3.0, 4.0, 1.0]), np.array([1.0, 0.2, 0.6])
    part = Part(center, size, np.eye(3))
    obj = SceneObject(7, "tv", 15, center, size, 0.0, (part,))
    return FurnishedRoom(room, "test", (obj,)), {7: np.array([0.2, 0.4, 0.6])}


def test_box_seen_head_on():
    furnished, colors = one_box_room()
    k = intrinsic_matrix(100.0, 100.0, 49.5, 39.5)
    renderer = Renderer(scene_geometry(furnished, colors, STRUCTURE), k, 100, 80)
    # Eye at (3, 1, 1) looking along +y: the box's front face (y = 3.9) is 2.9 m ahead; x in [2.5, 3.5] maps to
    # u = 49.5 +- 100 * 0.5 / 2.9 = [32.26, 66.74] and z in [0.7, 1.3] to v = 39.5 +- 100 * 0.3 / 2.9.
    frame = renderer.render(look_at_pose(np.array([3.0, 1.0, 1.0]), np.pi / 2, 0.0, 0.0))
    expected = np.zeros((80, 100), dtype=bool)
    expected[30:50, 33:67] = True
    np.testing.assert_array_equal(frame.instance == 7, expected)
    np.testing.assert_allclose(frame.depth[expected], 2.9, atol=1e-5)
    # Elsewhere: the far wall y = 6 is 5 m ahead; a ray through row v descends (v - 39.5) / 100 per metre, so it
    # meets the floor (1 m below the eye) first where that is nearer; the ceiling (2 m up, rows above the centre
    # rise at most 0.395 per metre) and the side walls (3 m aside) are always beyond the far wall.
    slope = (np.arange(80) - 39.5) / 100
    floor_depth = np.where(slope > 0, 1.0 / np.where(slope > 0, slope, 1), np.inf)
    by_hand = np.broadcast_to(np.minimum(5.0, floor_depth)[:, None], (80, 100))
    np.testing.assert_allclose(frame.depth[~expected], by_hand[~expected], rtol=1e-5)
    assert frame.rgb.shape == (80, 100, 3) and frame.rgb.dtype == np.uint8
    assert not np.array_equal(frame.rgb[40, 50], frame.rgb[5, 5])


def test_l_shaped_room_hides_its_notch():
    room = Room(6.0, 6.0, 3.0, notch=(3.0, 3.0, 6.0, 6.0))
    furnished, colors = one_box_room(room)
    k = intrinsic_matrix(100.0, 100.0, 99.5, 39.5)
    renderer = Renderer(scene_geometry(furnished, colors, STRUCTURE), k, 200, 80)
    frame = renderer.render(look_at_pose(np.array([1.5, 1.5, 1.2]), np.pi / 2, 0.0, 0.0))
    # u = 174: x = 0.745 per metre ahead, so the ray reaches the notch wall x = 3 at t = 1.5 / 0.745 with
    # y = 1.5 + t > 3: it stops there instead of running on to the bounding wall.
    assert frame.depth[40, 174] == pytest.approx(1.5 / 0.745, abs=1e-4)
    # u = 99: straight ahead to the far wall at y = 6.
    assert frame.depth[40, 99] == pytest.approx(4.5, abs=1e-4)


def test_box_crossing_the_near_plane_is_clipped_not_lost():
    furnished, colors = one_box_room()
    k = intrinsic_matrix(100.0, 100.0, 49.5, 39.5)
    renderer = Renderer(scene_geometry(furnished, colors, STRUCTURE), k, 100, 80)
    # Standing at the box's side, looking along it: part of the box is behind the camera.
    frame = renderer.render(look_at_pose(np.array([2.3, 4.0, 1.0]), 0.0, 0.0, 0.0))
    seen = frame.instance == 7
    assert seen.any()
    # The box's face x = 2.5 is 0.2 m ahead.
    assert frame.depth[seen].min() == pytest.approx(0.2, abs=1e-5)


def test_mask_boxes_by_hand():
    mask = np.zeros((10, 12), dtype=np.uint16)
    mask[5:8, 2:5] = 3  # instance 2
    mask[0, 11] = 1  # instance 0, one pixel
    mask[9, 0] = 3
    boxes = {b.instance_id: b.bbox for b in mask_boxes(mask)}
    assert boxes == {0: (11, 0, 11, 0), 2: (0, 5, 4, 9)}
    assert {b.instance_id: b.bbox for b in mask_boxes(mask, value_offset=0)} == {1: (11, 0, 11, 0),
                                                                                 3: (0, 5, 4, 9)}


def test_builder_recovers_hand_made_boxes(tmp_path):
    layout = ProcessedLayout(tmp_path, "toy", "val")
    yaw = np.radians(30)
    axes = np.array([[np.cos(yaw), np.sin(yaw), 0], [-np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    chair = box_surface_points(np.array([1.0, 2.0, 0.45]), np.array([0.5, 0.6, 0.9]), axes, 0.05)
    table = box_surface_points(np.array([3.0, 1.0, 0.4]), np.array([1.2, 0.8, 0.8]), np.eye(3), 0.05)
    floor = np.stack(np.meshgrid(np.linspace(0, 4, 81), np.linspace(0, 3, 61)), -1).reshape(-1, 2)
    floor = np.column_stack([floor, np.zeros(len(floor))])
    xyz = np.concatenate([chair, table, floor])
    label = np.concatenate([np.full(len(chair), 5), np.full(len(table), 6), np.full(len(floor), 1)])
    instance = np.concatenate([np.full(len(chair), 3), np.full(len(table), 4), np.zeros(len(floor), int)])
    write_point_cloud(layout.point_cloud_path("room0"), LabeledPoints(xyz, np.zeros((len(xyz), 3), np.uint8),
                                                                       label, instance))
    meta = build_scene_meta(layout, "room0", {5: "chair", 6: "table"})
    assert meta.object_counts == {"chair": 1, "table": 1}
    assert meta.room_size == pytest.approx(12.0, rel=1e-6)
    np.testing.assert_allclose(meta.room_center, [2.0, 1.5, 0.45], atol=1e-6)
    chair_box = meta.objects["chair"][0]
    assert chair_box.instance_id == 3
    np.testing.assert_allclose(chair_box.centroid, [1.0, 2.0, 0.45], atol=1e-6)  # PLY stores float32
    np.testing.assert_allclose(sorted(chair_box.axes_lengths), [0.5, 0.6, 0.9], atol=1e-6)
    # The box's long horizontal axis is the chair's y axis (0.6 m), turned by 30 degrees.
    long_axis = chair_box.normalized_axes[int(np.argmin(np.abs(chair_box.axes_lengths - 0.6)))]
    assert abs(long_axis @ axes[1]) == pytest.approx(1.0, abs=1e-6)
    assert meta.video_path == "videos/val/room0.mp4" and meta.split == "val"


def test_builder_rejects_degenerate_instances(tmp_path):
    layout = ProcessedLayout(tmp_path, "toy", "val")
    xyz = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 5, 5.0], [5, 5, 5.1]])
    write_point_cloud(layout.point_cloud_path("bad"), LabeledPoints(
        xyz, np.zeros((5, 3), np.uint8), np.array([1, 1, 1, 5, 5]), np.array([0, 0, 0, 9, 9])))
    with pytest.raises(SceneBuildError, match=r"bad\.ply: instance 9 \(chair\) has only 2 points"):
        build_scene_meta(layout, "bad", {5: "chair"})
    with pytest.raises(PointCloudError, match="no such file"):
        build_scene_meta(layout, "absent", {5: "chair"})
    layout.point_cloud_path("corrupt").write_bytes(b"ply\nformat nonsense\n")
    with pytest.raises(PointCloudError, match="corrupt.ply: not a readable PLY"):
        build_scene_meta(layout, "corrupt", {5: "chair"})


@pytest.fixture()
def broken_copy(small_synthetic, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(small_synthetic, root)
    layout = ProcessedLayout(root, "synthetic", "train")
    name = scene_name(SEED, 0)
    return layout, name, layout.frame_ids(name)


def test_builder_frame_errors_name_the_file(broken_copy):
    layout, name, frame_ids = broken_copy
    assert len(build_scene_frames(layout, name).frames) == len(frame_ids)
    pose_path = layout.pose_path(name, frame_ids[2])
    pose_path.write_text("-inf 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n")
    with pytest.raises(SceneBuildError, match=f"{pose_path.name}: pose has non-finite values"):
        build_scene_frames(layout, name)
    pose_path.write_text("1 0 0\n0 1 0\n")
    with pytest.raises(SceneBuildError, match="pose must be 4x4"):
        build_scene_frames(layout, name)
    pose_path.write_text("1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n")
    layout.depth_path(name, frame_ids[1]).unlink()
    with pytest.raises(SceneBuildError, match=r"depth.*missing \(frame"):
        build_scene_frames(layout, name)


def test_builder_rejects_mismatched_masks_and_intrinsics(broken_copy):
    layout, name, frame_ids = broken_copy
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(layout.instance_path(name, frame_ids[0]))
    with pytest.raises(SceneBuildError, match="image sizes differ"):
        build_scene_frames(layout, name)
    layout.intrinsic_path(name).write_text("not a matrix\n")
    with pytest.raises(SceneBuildError, match="unreadable intrinsics"):
        build_scene_frames(layout, name)
