"""Scene and frame metadata: the three file variants round trip, and malformed files fail with precise errors."""

import copy
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from vlm3r.cli.main import app
from vlm3r.scene import (
    MetadataError,
    SceneMetadataFormat,
    read_frame_metadata,
    read_scene_metadata,
    write_frame_metadata,
)

# A yawed chair: rows are the box axes (30 degrees about z).
C, S = np.cos(np.radians(30)), np.sin(np.radians(30))
YAW30 = [C, S, 0.0, -S, C, 0.0, 0.0, 0.0, 1.0]


def reference_file():
    """A ScanNet-style file as the reference writes it (instance ids, min/max, no scene_name)."""
    return {
        "scene0001_00": {
            "video_path": "ScanNet/videos/val/scene0001_00.mp4",
            "dataset": "scannet",
            "room_size": 35.86,
            "room_center": [-0.093, -0.53, 0.13],
            "object_counts": {"chair": 2, "table": 1},
            "object_bboxes": {
                "chair": [
                    {"centroid": [1.0, 2.0, 0.45], "axesLengths": [0.5, 0.6, 0.9], "normalizedAxes": YAW30,
                     "min": [0.633, 1.615, 0.0], "max": [1.367, 2.385, 0.9], "instance_id": 7},
                    {"centroid": [3.0, 2.0, 0.45], "axesLengths": [0.5, 0.5, 0.9],
                     "normalizedAxes": [1, 0, 0, 0, 1, 0, 0, 0, 1], "min": [2.75, 1.75, 0.0],
                     "max": [3.25, 2.25, 0.9], "instance_id": 8},
                ],
                "table": [{"centroid": [2.0, 0.5, 0.4], "axesLengths": [1.2, 0.8, 0.8],
                           "normalizedAxes": [1, 0, 0, 0, 1, 0, 0, 0, 1], "min": [1.4, 0.1, 0.0],
                           "max": [2.6, 0.9, 0.8], "instance_id": 2}],
            },
        }
    }


def arkit_file():
    return {
        "41069025": {
            "video_path": "ARkitScenes/videos/val/41069025.mp4", "dataset": "ARkitScenes", "room_size": 20.5,
            "room_center": [0.1, 0.2, 1.1], "object_counts": {"bed": 1},
            "object_bboxes": {"bed": [{"centroid": [0.5, 0.5, 0.3], "axesLengths": [2.0, 1.6, 0.6],
                                       "normalizedAxes": YAW30, "min_corner": [-0.8, -0.6, 0.0],
                                       "max_corner": [1.8, 1.6, 0.6]}]},
            "scene_name": "41069025", "split": "val",
        }
    }


def vsibench_file():
    """The released VSI-Bench meta_info layout: object_bbox, no instance ids; here with a B5-style duplicate."""
    return {
        "scene0378_01": {
            "video_path": "scannet/scene0378_01.mp4", "dataset": "scannet", "room_size": 12.3,
            "room_center": [1.0, 1.0, 1.3], "object_counts": {"printer": 1},
            "object_bbox": {"printer": [
                {"centroid": [0.2, 0.3, 0.9], "axesLengths": [0.4, 0.4, 0.3],
                 "normalizedAxes": [1, 0, 0, 0, 1, 0, 0, 0, 1], "min": [0.0, 0.1, 0.75], "max": [0.4, 0.5, 1.05]},
                {"centroid": [0.2, 0.3, 0.9], "axesLengths": [0.4, 0.4, 0.3],
                 "normalizedAxes": [1, 0, 0, 0, 1, 0, 0, 0, 1], "min": [0.0, 0.1, 0.75], "max": [0.4, 0.5, 1.05]},
            ]},
        }
    }


def frame_file():
    pose = [[0.0, 0.0, 1.0, 1.0], [-1.0, 0.0, 0.0, 2.0], [0.0, -1.0, 0.0, 1.5], [0.0, 0.0, 0.0, 1.0]]
    return {
        "scene0001_00": {
            "camera_intrinsics": {"fx": 577.59, "fy": 578.73, "cx": 318.91, "cy": 242.68},
            "img_width": 640, "img_height": 480,
            "frames": [
                {"frame_id": 0, "file_path_color": "color/val/scene0001_00/000000.jpg",
                 "file_path_depth": "depth/val/scene0001_00/000000.png",
                 "camera_pose_camera_to_world": copy.deepcopy(pose),
                 "bboxes_2d": [{"instance_id": 7, "bbox_2d": [0, 112, 231, 479]}]},
                {"frame_id": 24, "file_path_color": "color/val/scene0001_00/000024.jpg",
                 "file_path_depth": "depth/val/scene0001_00/000024.png",
                 "camera_pose_camera_to_world": copy.deepcopy(pose),
                 "bboxes_2d": []},
            ],
        },
        "scannetpp_scene": {
            "camera_intrinsics": {"fx": 600.0, "fy": 600.0, "cx": 292.0, "cy": 194.5},
            "img_width": 584, "img_height": 389, "split": "train",
            "frames": [{"frame_id": "DSC01752", "file_path_color": "x/dslr/rgb/DSC01752.JPG",
                        "file_path_depth": "x/dslr/render_depth/DSC01752.png",
                        "file_path_mask": "x/dslr/render_instance/DSC01752.png",
                        "camera_pose_camera_to_world": copy.deepcopy(pose),
                        "bboxes_2d": [{"instance_id": 3, "bbox_2d": [10, 20, 30, 40]}]}],
        },
    }


def dump(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("make, expected_format", [
    (reference_file, SceneMetadataFormat.REFERENCE),
    (arkit_file, SceneMetadataFormat.ARKITSCENES),
    (vsibench_file, SceneMetadataFormat.VSIBENCH),
])
def test_scene_variants_round_trip(tmp_path, make, expected_format):
    original = make()
    metadata = read_scene_metadata(dump(tmp_path, "in.json", original))
    assert metadata.format is expected_format
    out = tmp_path / "out.json"
    metadata.write(out)
    written = json.loads(out.read_text())
    # Only scene_name is added (the writer makes every scene self-describing); nothing is lost or changed.
    expected = copy.deepcopy(original)
    for name, scene in expected.items():
        scene.setdefault("scene_name", name)
    assert written == expected
    again = read_scene_metadata(out)
    assert again.format is expected_format
    assert list(again.scenes) == list(metadata.scenes)


def test_reference_file_content(tmp_path):
    scene = read_scene_metadata(dump(tmp_path, "in.json", reference_file())).scenes["scene0001_00"]
    assert scene.object_counts == {"chair": 2, "table": 1}
    assert scene.unique_categories() == ["table"]
    chair = scene.objects["chair"][0]
    assert chair.instance_id == 7
    # Row 0 of normalizedAxes is box axis 0 (length 0.5), pointing along (cos30, sin30, 0).
    np.testing.assert_allclose(chair.normalized_axes[0], [C, S, 0])
    np.testing.assert_allclose(chair.corners.min(0), [0.633, 1.615, 0.0], atol=1e-3)
    assert scene.instance(2)[0] == "table"
    assert scene.instance(99) is None


def test_vsibench_keeps_counts_as_stored(tmp_path):
    scene = read_scene_metadata(dump(tmp_path, "in.json", vsibench_file())).scenes["scene0378_01"]
    assert scene.object_counts["printer"] == 1 and len(scene.objects["printer"]) == 2
    assert scene.objects["printer"][0].instance_id is None


def test_convert_between_variants(tmp_path):
    metadata = read_scene_metadata(dump(tmp_path, "in.json", reference_file()))
    out = tmp_path / "vsi.json"
    metadata.write(out, format="vsibench")
    converted = json.loads(out.read_text())["scene0001_00"]
    assert "object_bbox" in converted and "object_bboxes" not in converted
    assert "instance_id" not in converted["object_bbox"]["chair"][0]
    metadata.write(out, format="arkitscenes")
    assert "min_corner" in json.loads(out.read_text())["scene0001_00"]["object_bboxes"]["chair"][0]


def test_frame_metadata_round_trip(tmp_path):
    original = frame_file()
    scenes = read_frame_metadata(dump(tmp_path, "frames.json", original))
    assert scenes["scene0001_00"].frames[1].frame_id == 24
    assert scenes["scannetpp_scene"].frames[0].frame_id == "DSC01752"
    np.testing.assert_allclose(scenes["scene0001_00"].frames[0].camera_center, [1.0, 2.0, 1.5])
    assert scenes["scene0001_00"].frames[0].visible_instances == {7}
    assert scenes["scene0001_00"].poses.shape == (2, 4, 4)
    out = tmp_path / "out.json"
    write_frame_metadata(out, scenes.values())
    expected = copy.deepcopy(original)
    for name, scene in expected.items():
        scene["scene_name"] = name
    written = json.loads(out.read_text())
    assert written == expected
    assert isinstance(written["scene0001_00"]["frames"][0]["bboxes_2d"][0]["bbox_2d"][0], int)


def _expect_error(tmp_path, data, *fragments, reader=read_scene_metadata, raw=None):
    path = tmp_path / "bad.json"
    path.write_text(raw if raw is not None else json.dumps(data))
    with pytest.raises(MetadataError) as info:
        reader(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return info.value


def test_missing_field(tmp_path):
    data = reference_file()
    del data["scene0001_00"]["room_size"]
    err = _expect_error(tmp_path, data, "scene0001_00", "room_size", "missing")
    assert err.scene == "scene0001_00" and err.field == "room_size"
    data = reference_file()
    del data["scene0001_00"]["object_bboxes"]["chair"][1]["centroid"]
    _expect_error(tmp_path, data, "object_bboxes['chair'][1].centroid", "missing")


def test_wrong_rotation_size(tmp_path):
    data = reference_file()
    data["scene0001_00"]["object_bboxes"]["table"][0]["normalizedAxes"] = [1, 0, 0, 0, 1, 0]
    _expect_error(tmp_path, data, "object_bboxes['table'][0].normalizedAxes", "expected 9 numbers, got 6")


def test_non_orthonormal_axes(tmp_path):
    data = reference_file()
    data["scene0001_00"]["object_bboxes"]["table"][0]["normalizedAxes"] = [1, 0.2, 0, 0, 1, 0, 0, 0, 1]
    _expect_error(tmp_path, data, "normalizedAxes", "not orthonormal")


def test_nan_and_negative_values(tmp_path):
    data = reference_file()
    data["scene0001_00"]["object_bboxes"]["chair"][0]["centroid"][1] = float("nan")
    _expect_error(tmp_path, data, "object_bboxes['chair'][0].centroid[1]", "non-finite")
    data = reference_file()
    data["scene0001_00"]["object_bboxes"]["chair"][0]["axesLengths"][2] = -0.1
    _expect_error(tmp_path, data, "axesLengths[2]", ">= 0")
    data = reference_file()
    data["scene0001_00"]["object_counts"]["chair"] = "two"
    _expect_error(tmp_path, data, "object_counts['chair']", "integer")


def test_bad_frames(tmp_path):
    data = frame_file()
    data["scene0001_00"]["frames"][1]["camera_pose_camera_to_world"][0][3] = float("-inf")
    _expect_error(tmp_path, data, "frames[1].camera_pose_camera_to_world[0][3]", "non-finite",
                  reader=read_frame_metadata)
    data = frame_file()
    data["scene0001_00"]["frames"][0]["camera_pose_camera_to_world"] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    _expect_error(tmp_path, data, "frames[0].camera_pose_camera_to_world", "4x4", reader=read_frame_metadata)
    data = frame_file()
    data["scene0001_00"]["frames"][0]["camera_pose_camera_to_world"][0][0] = 2.0
    _expect_error(tmp_path, data, "not a proper rotation", reader=read_frame_metadata)
    data = frame_file()
    data["scene0001_00"]["frames"][0]["bboxes_2d"][0]["bbox_2d"] = [50, 10, 20, 40]
    _expect_error(tmp_path, data, "bboxes_2d[0].bbox_2d", reader=read_frame_metadata)
    data = frame_file()
    del data["scannetpp_scene"]["camera_intrinsics"]["fy"]
    _expect_error(tmp_path, data, "scannetpp_scene", "camera_intrinsics.fy", reader=read_frame_metadata)


def test_unreadable_files(tmp_path):
    with pytest.raises(MetadataError, match="no such file"):
        read_scene_metadata(tmp_path / "absent.json")
    _expect_error(tmp_path, None, "not valid JSON", "line 1", raw='{"a": ')
    _expect_error(tmp_path, [1, 2], "expected an object mapping scene names")
    mixed = {**reference_file(), **vsibench_file()}
    _expect_error(tmp_path, mixed, "mixes metadata variants")


def test_write_is_atomic_on_failure(tmp_path):
    metadata = read_scene_metadata(dump(tmp_path, "in.json", reference_file()))
    metadata.scenes["scene0001_00"].room_size = float("nan")
    out = tmp_path / "out.json"
    with pytest.raises(ValueError):
        metadata.write(out)
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "in.json"]


runner = CliRunner()


@pytest.mark.parametrize("make", [reference_file, arkit_file, vsibench_file])
def test_cli_scenes_info(tmp_path, make):
    data = make()
    path = dump(tmp_path, "meta.json", data)
    result = runner.invoke(app, ["scenes", "info", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name, scene in data.items():
        assert name in result.output
        assert f"{scene['room_size']:.1f}" in result.output
        for category, count in scene["object_counts"].items():
            assert any(category in line and str(count) in line for line in result.output.splitlines())


def test_cli_scenes_info_frames_and_errors(tmp_path):
    path = dump(tmp_path, "frames.json", frame_file())
    result = runner.invoke(app, ["scenes", "info", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "scannetpp_scene" in result.output and "640x480" in result.output
    data = reference_file()
    del data["scene0001_00"]["room_center"]
    bad = dump(tmp_path, "bad.json", data)
    result = runner.invoke(app, ["scenes", "info", str(bad)], env={"COLUMNS": "300"})
    assert result.exit_code == 1 and "room_center" in result.output and "missing" in result.output


