"""Synthetic scenes checked independently of the renderer: geometry of pixels, point clouds, camera paths."""

import filecmp
import json
import shutil

import av
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import NUM_SCENES, SEED, SMALL
from vlm3r.cli.main import app
from vlm3r.datasets.layout import ProcessedLayout
from vlm3r.datasets.pointcloud import read_point_cloud
from vlm3r.datasets.synthetic.categories import SyntheticVocabulary
from vlm3r.datasets.synthetic.generate import design_scene, generate_dataset, scene_name
from vlm3r.geometry import point_box_distance, points_in_box, polygon_area
from vlm3r.scene import read_frame_metadata, read_scene_metadata

VOCAB = SyntheticVocabulary.load()


def layout_of(root):
    return ProcessedLayout(root, "synthetic", SMALL.split)


def designs():
    return [design_scene(SEED, i, SMALL, VOCAB) for i in range(NUM_SCENES)]


def box_surface_distance(points, center, lengths, axes):
    """|signed distance| from points to a box's surface, by hand: outside -> distance to the box,
    inside -> distance to the nearest face."""
    local = (points - center) @ axes.T
    half = lengths / 2
    outside = np.linalg.norm(np.maximum(np.abs(local) - half, 0), axis=-1)
    inside = np.min(half - np.abs(local), axis=-1)
    return np.where(outside > 0, outside, np.abs(inside))


def backproject(frame_meta, intrinsics, depth_m, pixels):
    u, v = pixels[:, 0], pixels[:, 1]
    z = depth_m[v, u]
    cam = np.stack([(u - intrinsics.cx) / intrinsics.fx * z, (v - intrinsics.cy) / intrinsics.fy * z, z], axis=1)
    pose = frame_meta.camera_to_world
    return cam @ pose[:3, :3].T + pose[:3, 3]


def test_metadata_lists_every_scene(small_synthetic):
    layout = layout_of(small_synthetic)
    scenes = read_scene_metadata(layout.scene_metadata_path).scenes
    frames = read_frame_metadata(layout.frame_metadata_path)
    names = [scene_name(SEED, i) for i in range(NUM_SCENES)]
    assert sorted(scenes) == names and sorted(frames) == names
    for name in names:
        assert scenes[name].video_path == f"videos/train/{name}.mp4"
        assert [f.frame_id for f in frames[name].frames] == list(SMALL.sampled_frame_ids)
        assert (frames[name].image_width, frames[name].image_height) == SMALL.frame_size


def test_depth_backprojects_onto_the_box_the_mask_names(small_synthetic):
    layout = layout_of(small_synthetic)
    frames = read_frame_metadata(layout.frame_metadata_path)
    for design in designs():
        scene_frames = frames[design.name]
        parts = {obj.instance_id: obj.parts for obj in design.furnished.objects}
        room = design.furnished.room
        outline = room.outline()
        seen = set()
        for frame in scene_frames.frames:
            depth = np.asarray(Image.open(small_synthetic / frame.file_path_depth)).astype(np.float64) / 1000
            mask = np.asarray(Image.open(layout.instance_path(design.name, frame.frame_id))).astype(np.int64)
            v, u = np.nonzero(np.ones_like(mask, dtype=bool))
            world = backproject(frame, scene_frames.intrinsics, depth, np.stack([u, v], 1))
            ids = mask[v, u] - 1
            for instance_id in np.unique(ids[ids >= 0]):
                selected = world[ids == instance_id]
                distance = np.min([box_surface_distance(selected, p.center, p.lengths, p.axes)
                                   for p in parts[instance_id]], axis=0)
                # depth is stored in whole millimetres; a centimetre is the acceptance bound
                assert distance.max() < 0.01, (design.name, frame.frame_id, instance_id, distance.max())
                seen.add(int(instance_id))
            shell = world[ids < 0]
            on_floor_or_ceiling = (np.abs(shell[:, 2]) < 0.01) | (np.abs(shell[:, 2] - room.height) < 0.01)
            starts, ends = outline, np.roll(outline, -1, axis=0)
            seg = ends - starts
            t = np.clip(((shell[:, None, :2] - starts) * seg).sum(-1) / (seg ** 2).sum(-1), 0, 1)
            wall_distance = np.linalg.norm(shell[:, None, :2] - (starts + t[..., None] * seg), axis=-1).min(1)
            assert np.all(on_floor_or_ceiling | (wall_distance < 0.01))
        # every instance the frame metadata says its frames show was checked, and no other
        assert seen == set().union(*(f.visible_instances for f in scene_frames.frames))


def test_point_cloud_and_boxes(small_synthetic):
    layout = layout_of(small_synthetic)
    scenes = read_scene_metadata(layout.scene_metadata_path).scenes
    for design in designs():
        meta = scenes[design.name]
        points = read_point_cloud(layout.point_cloud_path(design.name))
        by_id = {obj.instance_id: obj for obj in design.furnished.objects}
        assert meta.num_objects == len(by_id)
        for category, boxes in meta.objects.items():
            for box in boxes:
                obj = by_id[box.instance_id]
                assert obj.category == category
                own = points.xyz[points.instance_id == box.instance_id]
                assert np.all(points_in_box(own, box.centroid, box.axes_lengths, box.normalized_axes, tol=1e-6))
                # The builder's box (fitted to points) is the generator's bounding box of the object.
                np.testing.assert_allclose(box.centroid, obj.center, atol=1e-3)
                np.testing.assert_allclose(np.sort(box.axes_lengths), np.sort(obj.size), atol=1e-3)
        assert meta.room_size == pytest.approx(design.furnished.room.area, rel=0.02)
        assert meta.room_size == pytest.approx(polygon_area(design.furnished.room.outline()), rel=0.02)


def test_camera_stays_in_the_room_and_out_of_objects(small_synthetic):
    for design in designs():
        positions = design.trajectory.poses[:, :3, 3]
        assert np.all(design.furnished.room.contains(positions[:, :2], margin=0.2))
        assert np.all((positions[:, 2] > 1.1) & (positions[:, 2] < 1.9))
        for obj in design.furnished.objects:
            assert np.all(point_box_distance(positions, obj.center, obj.size, obj.axes) > 0.1)
        rotations = design.trajectory.poses[:, :3, :3]
        np.testing.assert_allclose(rotations @ rotations.transpose(0, 2, 1), np.tile(np.eye(3), (len(rotations), 1, 1)),
                                   atol=1e-9)
        # a handheld walk: at most about 1 m/s between consecutive 24 fps frames, never a jump
        steps = np.linalg.norm(np.diff(positions[:, :2], axis=0), axis=1)
        assert steps.max() < 1.0 / 24


def test_every_sampled_frame_sees_an_object(small_synthetic):
    frames = read_frame_metadata(layout_of(small_synthetic).frame_metadata_path)
    for scene in frames.values():
        assert all(frame.bboxes_2d for frame in scene.frames)


def test_furniture_does_not_overlap_and_rests_where_it_should():
    from vlm3r.geometry import boxes_intersect

    for index in range(6):
        furnished = design_scene(SEED + 1, index, SMALL, VOCAB).furnished
        objects = furnished.objects
        for i, a in enumerate(objects):
            assert furnished.room.footprint_fits(a.center[:2], a.size[:2], a.yaw, margin=-1e-6)
            for b in objects[i + 1:]:
                if a.support_id == b.instance_id or b.support_id == a.instance_id:
                    continue
                assert not boxes_intersect(a.center, a.size, a.axes, b.center, b.size, b.axes)
            spec = VOCAB.by_name[a.category]
            if spec.placement == "surface":
                support = next(o for o in objects if o.instance_id == a.support_id)
                assert support.category in spec.on
                assert a.bottom == pytest.approx(support.top_surface)
            elif spec.placement in ("wall", "floor"):
                assert a.bottom == pytest.approx(0.0)
            if spec.placement in ("wall", "wall_mounted"):
                back = a.center[:2] + a.axes[1, :2] * a.size[1] / 2
                outline = furnished.room.outline()
                starts, ends = outline, np.roll(outline, -1, axis=0)
                seg = ends - starts
                t = np.clip(((back - starts) * seg).sum(-1) / (seg ** 2).sum(-1), 0, 1)
                assert np.linalg.norm(back - (starts + t[:, None] * seg), axis=1).min() < 0.03


def test_room_statistics_look_like_rooms():
    """Twelve seeded rooms: their sizes are the generator's ranges (height 2.4-3.0 m, floor 8-60 m²), and each
    has a door and the objects, unique categories and categories these seeds give: most categories unique (so
    distance and direction questions exist) and some repeated (so counting questions exist)."""
    furnishing = []
    for index in range(12):
        furnished = design_scene(SEED + 2, index, SMALL, VOCAB).furnished
        categories = [o.category for o in furnished.objects]
        assert 2.4 <= furnished.room.height <= 3.0 and 8 <= furnished.room.area <= 60  # the generator's ranges
        assert "door" in categories
        furnishing.append((len(categories), sum(categories.count(c) == 1 for c in set(categories)),
                           len(set(categories))))
    assert furnishing == [(5, 5, 5), (10, 8, 9), (13, 11, 12), (18, 10, 14), (12, 6, 9), (9, 7, 8), (10, 6, 8),
                          (16, 9, 12), (8, 8, 8), (16, 5, 10), (13, 9, 10), (12, 8, 10)]  # (objects, unique, kinds)


def test_video_frames_match_sampled_frames(small_synthetic):
    layout = layout_of(small_synthetic)
    name = scene_name(SEED, 0)
    with av.open(str(layout.video_path(name))) as container:
        video = [f.to_ndarray(format="rgb24").astype(np.float64) for f in container.decode(video=0)]
    assert len(video) == SMALL.video_frames and video[0].shape == (72, 96, 3)
    for frame_id in SMALL.sampled_frame_ids[[0, 3, -1]]:
        color = np.asarray(Image.open(layout.color_path(name, frame_id)).resize((96, 72), Image.BILINEAR), float)
        same = np.abs(color - video[frame_id]).mean()
        others = [np.abs(color - video[j]).mean() for j in range(len(video)) if abs(j - frame_id) > 12]
        assert same < 12 and same < min(others)


def test_same_seed_same_bytes(small_synthetic, tmp_path):
    generate_dataset(tmp_path, NUM_SCENES, SEED, SMALL)
    comparison = filecmp.dircmp(small_synthetic, tmp_path)

    def differences(cmp):
        found = cmp.left_only + cmp.right_only + cmp.diff_files + cmp.funny_files
        for sub in cmp.subdirs.values():
            found += differences(sub)
        return found

    assert differences(comparison) == []
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 50
    for path in files:  # dircmp compares shallowly; compare contents too
        assert path.read_bytes() == (small_synthetic / path.relative_to(tmp_path)).read_bytes(), path
    other = tmp_path / "other"
    generate_dataset(other, 1, SEED + 100, SMALL)
    meta = json.loads(ProcessedLayout(other, "synthetic", "train").scene_metadata_path.read_text())
    assert list(meta) == [scene_name(SEED + 100, 0)]


runner = CliRunner()


@pytest.mark.parametrize("args, message", [
    (["--num-scenes", "0"], "at least 1"),
    (["--num-scenes", "1", "--size", "0x0"], "impossible"),
    (["--num-scenes", "1", "--size", "big"], "WIDTHxHEIGHT"),
    (["--num-scenes", "1", "--size", "641x480"], "even"),
    (["--num-scenes", "1", "--frames", "50", "--video-frames", "40"], "frames"),
])
def test_bad_arguments(tmp_path, args, message):
    result = runner.invoke(app, ["scenes", "synth", "--out", str(tmp_path / "d"), *args], env={"COLUMNS": "200"})
    assert result.exit_code != 0
    assert message in result.output


def test_unwritable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(app, ["scenes", "synth", "--out", str(blocker / "d"), "--num-scenes", "1"],
                           env={"COLUMNS": "200"})
    assert result.exit_code != 0 and "(--out): cannot be created" in result.output


def test_show_names_what_a_scene_lacks(small_synthetic, tmp_path):
    from vlm3r.viz.scene_view import SceneViewError, find_scene, render_scene_overview

    shutil.copytree(small_synthetic / "metadata", tmp_path / "metadata")
    shutil.copytree(small_synthetic / "color", tmp_path / "color")
    layout, scene = find_scene(tmp_path / scene_name(SEED, 0))
    frame = read_frame_metadata(layout.frame_metadata_path)[scene].frames[0]
    (tmp_path / frame.file_path_color).write_bytes(b"not a jpeg")
    with pytest.raises(SceneViewError, match=f"{frame.file_path_color}: colour frame {frame.frame_id} of scene "
                                             f"'{scene}' is not a readable image"):
        render_scene_overview(layout, scene, tmp_path / "x.png")
    frames = json.loads(layout.frame_metadata_path.read_text())
    del frames[scene]
    layout.frame_metadata_path.write_text(json.dumps(frames))
    with pytest.raises(SceneViewError, match=f"no frames of scene '{scene}' in this frame metadata"):
        render_scene_overview(layout, scene, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_cli_synth_and_show(tmp_path):
    out = tmp_path / "ds"
    result = runner.invoke(app, ["scenes", "synth", "--out", str(out), "--num-scenes", "1", "--seed", "5",
                                 "--frames", "4", "--video-frames", "12", "--size", "96x64", "--video-size", "48x32"])
    assert result.exit_code == 0, result.output
    assert "scene metadata" in result.output
    png = tmp_path / "scene.png"
    result = runner.invoke(app, ["scenes", "show", str(out / scene_name(5, 0)), "--out", str(png)])
    assert result.exit_code == 0, result.output
    with Image.open(png) as image:
        assert image.size[0] > 800 and image.size[1] > 400
    result = runner.invoke(app, ["scenes", "show", str(out / "no_such_scene"), "--out", str(png)])
    assert result.exit_code == 1 and "no scene" in result.output


def test_demo_distance_table_matches_metadata(small_synthetic):
    """Every pair of unique objects, each distance computed box by box, nearest first; the table shows them."""
    from vlm3r.viz.tables import distance_table
    from vlm3r.geometry import box_box_distance

    scene = read_scene_metadata(layout_of(small_synthetic).scene_metadata_path).scenes[scene_name(SEED, 0)]
    names = scene.unique_categories()
    want = []
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            a, b = scene.objects[first][0], scene.objects[second][0]
            want.append((first, second, float(box_box_distance(a.centroid, a.axes_lengths, a.normalized_axes,
                                                               b.centroid, b.axes_lengths, b.normalized_axes))))
    want.sort(key=lambda t: t[2])
    got = scene.unique_object_distances()
    assert len(want) == len(names) * (len(names) - 1) // 2
    assert [(a, b) for a, b, _ in got] == [(a, b) for a, b, _ in want]
    np.testing.assert_allclose([d for *_, d in got], [d for *_, d in want], rtol=1e-12)
    cells = list(zip(*(col._cells for col in distance_table(scene).columns)))
    assert cells == [(a, b, f"{d:.2f}") for a, b, d in want]
