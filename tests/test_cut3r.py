"""CUT3R: parity with the official reference vectors, and our own checks of each part."""

import argparse
import json
import math

import pytest
import torch

from helpers import REFERENCE, assert_parity, needs_reference, write_video

from vlm3r.model.checks import ConfigError
from vlm3r.model.cut3r import Cut3r, Cut3rCheckpointError, Cut3rConfig, Cut3rState, load_cut3r
from vlm3r.model.cut3r.loading import normalize_state_dict
from vlm3r.model.cut3r.rope import rope_2d

FULL_STRING = ("ARCroco3DStereo(ARCroco3DStereoConfig(freeze='encoder', state_size=768, state_pe='2d', "
               "pos_embed='RoPE100', rgb_head=True, pose_head=True, patch_embed_cls='ManyAR_PatchEmbed', "
               "img_size=(512,512), head_type='dpt', output_mode='pts3d+pose', depth_mode=('exp',-inf,inf), "
               "conf_mode=('exp',1,inf), pose_mode=('exp',-inf,inf), enc_embed_dim=1024, enc_depth=24, "
               "enc_num_heads=16, dec_embed_dim=768, dec_depth=12, dec_num_heads=12, landscape_only=False))")


def tiny_config() -> dict:
    manifest = json.loads((REFERENCE / "manifest.json").read_text())
    return {**manifest["config"], "dpt_override": manifest["dpt_override"]}


def load_reference(name):
    from safetensors.torch import load_file

    return load_file(str(REFERENCE / f"{name}.safetensors"))


@pytest.fixture(scope="module")
def tiny():
    return load_cut3r(REFERENCE / "state_dict.safetensors", config=tiny_config())


@needs_reference
def test_tokens_and_heads_match_the_official_code(tiny):
    frames = load_reference("A_inputs")["pixel_values"][0]
    expected = load_reference("A_outputs")
    camera, patch = tiny.encode_video(frames)
    assert_parity(camera, expected["camera_tokens"][0])
    assert_parity(patch, expected["patch_tokens"][0])
    camera2, patch2, heads = tiny.reconstruct(frames)
    torch.testing.assert_close(camera2, camera, rtol=0, atol=0)
    for name in ("pts3d_in_self_view", "conf_self", "rgb", "camera_pose", "pts3d_in_other_view", "conf"):
        got = torch.cat([getattr(h, name) for h in heads])
        want = expected[name][0]
        # 1e-4 relative to the tensor's scale (single entries near zero make elementwise ratios meaningless)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item(), msg=name)


@needs_reference
def test_intermediates_stage_by_stage(tiny):
    frames = load_reference("A_inputs")["pixel_values"][0]
    mid = {k: v for k, v in load_reference("A_intermediates").items()}
    captured: dict[str, list] = {}

    def keep(name, pick=lambda out: out):
        def hook(_module, _inputs, output):
            captured.setdefault(name, []).append(pick(output).detach().clone())
        return hook

    handles = [tiny.patch_embed.register_forward_hook(keep("patch_embed_out", lambda o: o[0])),
               tiny.enc_blocks[0].register_forward_hook(keep("enc_block0_out"))]
    for layer in range(3):
        handles.append(tiny.dec_blocks[layer].register_forward_hook(keep(f"dec_img_l{layer + 1}")))
        handles.append(tiny.dec_blocks_state[layer].register_forward_hook(keep(f"dec_state_l{layer + 1}")))
    tokens, pos = tiny.encode_images(frames)
    state = tiny.init_state(1)
    torch.testing.assert_close(state.state[0], mid["state_init"], rtol=0, atol=1e-6)
    torch.testing.assert_close(pos[0], mid["img_pos"], rtol=0, atol=0)
    torch.testing.assert_close(tiny.state_positions("cpu")[0], mid["state_pos"], rtol=0, atol=0)
    for i in range(frames.shape[0]):
        assert_parity(state.state, mid["state_in"][:, i])
        assert_parity(state.mem, mid["mem_in"][:, i])
        assert_parity(tokens[i:i + 1].mean(1, keepdim=True), mid["global_img_feat"][:, i])
        out, state = tiny.decode(tokens[i:i + 1], pos[i:i + 1], state)
        assert_parity(torch.cat([out.camera, out.patch], 1), mid["dec_img_final"][:, i])
        assert_parity(state.state, mid["state_new"][:, i])
        assert_parity(state.mem, mid["mem_new"][:, i])
        assert_parity(state.state, mid["state_after"][:, i])
    for handle in handles:
        handle.remove()
    for name in ("patch_embed_out", "enc_block0_out"):
        assert_parity(captured[name][0], mid[name][0], msg=name)
    for name in [f"dec_{s}_l{k}" for s in ("img", "state") for k in (1, 2, 3)]:
        assert_parity(torch.cat(captured[name]), mid[name][0], msg=name)


def test_rope_against_the_direct_formula():
    torch.manual_seed(0)
    dim, quarter = 16, 4
    x = torch.randn(2, 3, 5, dim)
    pos = torch.tensor([[[-1, -1], [0, 0], [0, 3], [2, 1], [7, 4]]] * 2)
    out = rope_2d(x, pos, 100.0)
    for b in range(2):
        for n in range(5):
            for half, coordinate in ((0, pos[b, n, 0]), (1, pos[b, n, 1])):
                for i in range(quarter):
                    angle = float(coordinate) * 100.0 ** (-i / quarter)
                    u = x[b, :, n, half * dim // 2 + i]
                    v = x[b, :, n, half * dim // 2 + i + quarter]
                    torch.testing.assert_close(out[b, :, n, half * dim // 2 + i],
                                               u * math.cos(angle) - v * math.sin(angle), atol=1e-5, rtol=0)
                    torch.testing.assert_close(out[b, :, n, half * dim // 2 + i + quarter],
                                               v * math.cos(angle) + u * math.sin(angle), atol=1e-5, rtol=0)
    # a rotation: norms are kept, position 0 is the identity, and it runs at the pose token's (-1, -1)
    torch.testing.assert_close(out.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(out[:, :, 1], x[:, :, 1])
    assert rope_2d(x.half(), pos, 100.0).dtype == torch.float16


def random_tiny_model(seed=0) -> Cut3r:
    torch.manual_seed(seed)
    config = Cut3rConfig(enc_embed_dim=32, enc_depth=1, enc_num_heads=2, dec_embed_dim=16, dec_depth=4,
                         dec_num_heads=2, state_dec_num_heads=2, state_size=12, local_mem_size=4,
                         dpt_feature_dim=8, dpt_last_dim=4, dpt_layer_dims=(4, 4, 8, 8))
    model = Cut3r(config)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * (1 / max(1, p[0].numel()) ** 0.5 if p.ndim > 1 else 0.1))
    return model.eval()


def test_streaming_equals_batch_and_videos_keep_separate_states():
    model = random_tiny_model()
    torch.manual_seed(1)
    video_a, video_b = torch.rand(5, 3, 32, 48) * 2 - 1, torch.rand(5, 3, 32, 48) * 2 - 1
    camera, patch = model.encode_video(video_a)
    assert camera.shape == (5, 1, 16) and patch.shape == (5, 6, 16)
    state = model.init_state()
    for t in range(5):
        state, camera_t, patch_t = model.step(video_a[t:t + 1], state)
        torch.testing.assert_close(camera_t[0], camera[t], rtol=0, atol=1e-6)
        torch.testing.assert_close(patch_t[0], patch[t], rtol=0, atol=1e-6)
    # Causal: frame t's tokens do not depend on later frames.
    camera_prefix, _ = model.encode_video(video_a[:3])
    torch.testing.assert_close(camera_prefix, camera[:3], rtol=0, atol=1e-6)
    both_camera, both_patch = model.encode_video(torch.stack([video_a, video_b]))
    alone_b = model.encode_video(video_b)
    torch.testing.assert_close(both_camera[0], camera, rtol=0, atol=1e-5)
    torch.testing.assert_close(both_patch[1], alone_b[1], rtol=0, atol=1e-5)
    assert not torch.allclose(both_patch[0], both_patch[1])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_runs_close_to_fp32(dtype):
    model = random_tiny_model()
    frames = torch.rand(3, 3, 32, 32) * 2 - 1
    _, patch32 = model.encode_video(frames)
    _, patch_low = model.to(dtype).encode_video(frames.to(dtype))
    assert patch_low.dtype == dtype
    assert (patch_low.float() - patch32).abs().max() < 0.1 * patch32.abs().max()


def test_full_size_architecture_matches_the_official_key_list():
    """The full model built on the meta device has exactly the official keys and shapes, minus the dead ray-map
    branch and the DPT aliases."""
    keys_file = REFERENCE.parent / "cut3r_state_dict_keys.txt"
    if not keys_file.is_file():
        pytest.skip(f"{keys_file} not found")
    official = {}
    for line in keys_file.read_text().splitlines():
        key, shape = line.split("\t")
        official[key] = torch.empty(json.loads(shape), device="meta")
    expected = {k: tuple(v.shape) for k, v in normalize_state_dict(official, keys_file).items()}
    with torch.device("meta"):
        model = Cut3r(Cut3rConfig.from_constructor_string(FULL_STRING))
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == expected


def test_config_parsing():
    assert Cut3rConfig.from_constructor_string(FULL_STRING) == Cut3rConfig.full()
    with pytest.raises(ValueError):
        Cut3rConfig.from_constructor_string("ARCroco3DStereo(ARCroco3DStereoConfig(state_size=__import__('os')))")
    with pytest.raises(ValueError):
        Cut3rConfig.from_constructor_string("not python at all (")
    assert Cut3rConfig.full().state_grid_width == 28 and Cut3rConfig.full().hooks == (0, 6, 9, 12)


@pytest.mark.parametrize("fields, message", [
    ({"dec_embed_dim": 30, "dec_num_heads": 4}, r"cut3r.dec_num_heads \(of dec_embed_dim\): 4 does not divide 30"),
    ({"dec_embed_dim": 96, "state_dec_num_heads": 16}, r"cut3r.state_dec_num_heads: heads of 6 channels; 2D RoPE"),
    ({"enc_depth": 0}, r"cut3r.enc_depth: expected a positive integer, got 0"),
    ({"dpt_layer_dims": (4, 8, 8)}, r"cut3r.dpt_layer_dims: expected 4 positive integers"),
])
def test_impossible_architectures_are_refused(fields, message, tmp_path):
    """Sizes no CUT3R can have fail when the config is made, naming the field (96 / 16 = 6 channels a head,
    which the quarter-turns of 2D RoPE cannot split); read from a checkpoint's args.model, the file is named."""
    with pytest.raises(ConfigError, match=message):
        Cut3rConfig(**fields)
    values = {**{k: getattr(Cut3rConfig.full(), k) for k in ("enc_embed_dim", "dec_embed_dim")}, **fields}
    constructor = "ARCroco3DStereo(ARCroco3DStereoConfig(" + ", ".join(f"{k}={v!r}" for k, v in values.items()) + "))"
    path = tmp_path / "odd.pth"
    torch.save({"args": argparse.Namespace(model=constructor), "model": {}}, path)
    with pytest.raises(Cut3rCheckpointError, match=f"{path}: .*{message}"):
        load_cut3r(path)


@needs_reference
def test_released_pth_layout_round_trip(tiny, tmp_path):
    """A .pth as released: {'args': Namespace(model=...), 'model': state dict with module. prefixes}."""
    from safetensors.torch import load_file

    state_dict = load_file(str(REFERENCE / "state_dict.safetensors"))
    config = tiny_config()
    constructor = ("ARCroco3DStereo(ARCroco3DStereoConfig(" + ", ".join(
        f"{k}={v!r}" for k, v in config.items() if k != "dpt_override") + "))")
    path = tmp_path / "cut3r.pth"
    torch.save({"args": argparse.Namespace(model=constructor), "model": {f"module.{k}": v for k, v in
                                                                         state_dict.items()}}, path)
    model = load_cut3r(path, config=config)
    frames = load_reference("A_inputs")["pixel_values"][0]
    torch.testing.assert_close(model.encode_video(frames)[1], tiny.encode_video(frames)[1], rtol=0, atol=0)
    # Without config= the constructor string is parsed; the tiny DPT sizes are not in it, so the head shapes
    # do not fit -- reported by name, never loaded partially.
    with pytest.raises(Cut3rCheckpointError, match=r"wrong shape: downstream_head\.dpt_"):
        load_cut3r(path)
    tokens_only = load_cut3r(path, config=config, with_heads=False)
    assert tokens_only.downstream_head is None


@needs_reference
def test_checkpoint_errors_name_the_keys(tmp_path):
    from safetensors.torch import load_file, save_file

    state_dict = load_file(str(REFERENCE / "state_dict.safetensors"))
    broken = dict(state_dict)
    del broken["dec_norm.weight"]
    broken["extra.weight"] = torch.zeros(1)
    broken["enc_norm.bias"] = torch.zeros(3)
    save_file(broken, str(tmp_path / "broken.safetensors"))
    with pytest.raises(Cut3rCheckpointError) as info:
        load_cut3r(tmp_path / "broken.safetensors", config=tiny_config())
    message = str(info.value)
    assert "broken.safetensors" in message and "1 missing: dec_norm.weight" in message
    assert "1 unexpected: extra.weight" in message and "enc_norm.bias: checkpoint (3,), model (64,)" in message
    alias = dict(state_dict)
    alias["downstream_head.dpt_self.scratch.layer_rn.0.weight"] = torch.zeros_like(
        alias["downstream_head.dpt_self.scratch.layer_rn.0.weight"])
    save_file(alias, str(tmp_path / "alias.safetensors"))
    with pytest.raises(Cut3rCheckpointError, match="should be the same tensor"):
        load_cut3r(tmp_path / "alias.safetensors", config=tiny_config())
    with pytest.raises(Cut3rCheckpointError, match="no such file"):
        load_cut3r(tmp_path / "absent.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(Cut3rCheckpointError, match="not readable as a torch checkpoint"):
        load_cut3r(tmp_path / "garbage.pth", config=tiny_config())
    with pytest.raises(Cut3rCheckpointError, match="carries no model configuration"):
        load_cut3r(REFERENCE / "state_dict.safetensors")


def test_video_sampling_and_preprocessing(tmp_path):
    import numpy as np

    from vlm3r.model.video import cut3r_pixels, siglip_pixels
    from vlm3r.utils.video import VideoError, read_video_frames

    frames = np.zeros((40, 48, 64, 3), dtype=np.uint8)
    for i in range(40):
        frames[i, :, :, 0] = i * 6  # the red level tells the frame apart
    write_video(tmp_path / "v.mp4", frames)
    sampled, indices, fps = read_video_frames(tmp_path / "v.mp4", 8)
    assert indices.tolist() == np.linspace(0, 39, 8, dtype=int).tolist() and fps == 24
    assert np.all(np.abs(sampled[..., 0].mean(axis=(1, 2)) - indices * 6) < 4)
    pixels = siglip_pixels(sampled)
    assert pixels.shape == (8, 3, 384, 384) and pixels.min() >= -1 and pixels.max() <= 1
    # x / 255 then (x - 0.5) / 0.5: black is -1
    assert pixels[:, 2].max().item() < -0.95
    assert cut3r_pixels(pixels).shape == (8, 3, 432, 432)
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(VideoError, match="bad.mp4: not a readable video"):
        read_video_frames(tmp_path / "bad.mp4")
    truncated = (tmp_path / "v.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(truncated[:len(truncated) // 2])  # the index (moov) is at the end
    with pytest.raises(VideoError, match="cut.mp4: not a readable video"):
        read_video_frames(tmp_path / "cut.mp4")


def decode_all_then_sample(path, num_frames):
    """The straightforward reading (every frame decoded to RGB, then linspace), as an independent expectation."""
    import av
    import numpy as np

    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]
    n = len(decoded)
    indices = np.linspace(0, n - 1, num_frames, dtype=int) if n > num_frames else np.arange(n)
    return np.stack([decoded[i] for i in indices]), indices


@pytest.mark.parametrize("name, count, codec", [("long.mp4", 203, "libx264"), ("short.mp4", 5, "libx264"),
                                                ("clip.mkv", 77, "mpeg4")])
def test_sampled_frames_equal_decoding_everything(tmp_path, name, count, codec):
    """Only the sampled frames are kept while decoding; the frames and pixels are those of decoding the whole
    video (B-frames reordered by libx264, a video shorter than the sample, another container and codec)."""
    import av
    import numpy as np

    from vlm3r.utils.video import count_frames, read_video_frames

    rng = np.random.default_rng(count)
    path = tmp_path / name
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(count):
            frame = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) // 4 + (i % 190)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame.astype(np.uint8), format="rgb24")))
        container.mux(stream.encode())
    assert count_frames(path) == count
    got, indices, fps = read_video_frames(path, 32)
    want, want_indices = decode_all_then_sample(path, 32)
    assert indices.tolist() == want_indices.tolist() and fps == 30
    assert np.array_equal(got, want)


def test_reconstruct_command(tmp_path):
    import dataclasses

    import numpy as np
    from safetensors.torch import save_file
    from typer.testing import CliRunner

    from vlm3r.cli.main import app
    from vlm3r.datasets.pointcloud import read_ply_vertices

    model = random_tiny_model()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "cut3r.safetensors"))
    c = dataclasses.asdict(model.config)
    config = {k: c[k] for k in ("enc_embed_dim", "enc_depth", "enc_num_heads", "dec_embed_dim", "dec_depth",
                                "dec_num_heads", "state_dec_num_heads", "state_size", "local_mem_size")}
    config["dpt_override"] = {"feature_dim": c["dpt_feature_dim"], "last_dim": c["dpt_last_dim"],
                              "layer_dims": list(c["dpt_layer_dims"])}
    (tmp_path / "config.json").write_text(json.dumps(config))
    rng = np.random.default_rng(0)
    write_video(tmp_path / "room.mp4", rng.integers(0, 255, (6, 48, 64, 3), dtype=np.uint8))
    out = tmp_path / "room.ply"
    result = CliRunner().invoke(app, ["cut3r", "reconstruct", str(tmp_path / "room.mp4"), "--cut3r",
                                      str(tmp_path / "cut3r.safetensors"), "--config", str(tmp_path / "config.json"),
                                      "--out", str(out), "--frames", "3", "--keep", "0.25"])
    assert result.exit_code == 0, result.output
    xyz, _, _ = read_ply_vertices(out)  # a plain x y z red green blue PLY, no labels
    assert len(xyz) == round(0.25 * 3 * 432 * 432) and "left out" not in result.output
    cameras = json.loads(out.with_suffix(".cameras.json").read_text())
    poses = np.array(cameras["camera_to_world"])
    assert cameras["frame_indices"] == [0, 2, 5] and poses.shape == (3, 4, 4)
    np.testing.assert_allclose(poses[:, :3, :3] @ poses[:, :3, :3].transpose(0, 2, 1), np.tile(np.eye(3), (3, 1, 1)),
                               atol=1e-5)
    result = CliRunner().invoke(app, ["cut3r", "reconstruct", str(tmp_path / "room.mp4"), "--cut3r",
                                      str(tmp_path / "cut3r.safetensors"), "--out", str(out)])
    assert result.exit_code == 1 and "carries no model configuration" in result.output


def test_update_and_reset_masks():
    """The official blend: state <- new * update + old * (1 - update); reset -> initial state and memory."""
    model = random_tiny_model()
    frames = torch.rand(2, 2, 3, 32, 32) * 2 - 1  # two videos, two frames
    state = model.init_state(2)
    state, _, _ = model.step(frames[:, 0], state)
    before = state
    updated, _, _ = model.step(frames[:, 1], before)
    masked, camera, _ = model.step(frames[:, 1], before, update=torch.tensor([True, False]))
    torch.testing.assert_close(masked.state[0], updated.state[0], rtol=0, atol=0)
    torch.testing.assert_close(masked.state[1], before.state[1], rtol=0, atol=0)
    torch.testing.assert_close(masked.mem[1], before.mem[1], rtol=0, atol=0)
    assert camera.shape == (2, 1, 16)  # tokens are produced either way
    reset, _, _ = model.step(frames[:, 1], before, reset=torch.tensor([False, True]))
    initial = model.init_state(2)
    torch.testing.assert_close(reset.state[1], initial.state[1], rtol=0, atol=0)
    torch.testing.assert_close(reset.mem[1], initial.mem[1], rtol=0, atol=0)
    torch.testing.assert_close(reset.state[0], updated.state[0], rtol=0, atol=0)
    # After a reset the next frame asks the retriever (frames_seen > 0), unlike a brand-new state.
    _, after_reset, _ = model.step(frames[1:, 0], Cut3rState(reset.state[1:], reset.mem[1:], reset.frames_seen))
    _, fresh, _ = model.step(frames[1:, 0], model.init_state(1))
    assert not torch.allclose(after_reset, fresh)
