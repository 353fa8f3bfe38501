"""The GPU check a lent device machine runs in one call (benchmarks/device_check.sh), and that the tests run on
the CPU with ``--tiny`` so that it never rots. Sections, each timed and its peak memory read:

1. parity: the tiny model's logits and greedy answer on the CPU vs the device (fp32), and bf16 vs fp32 on the
   device (on the CPU itself: only the reference answer);
2. CUT3R at full size (cut3r_512_dpt_4_64 architecture, random weights), 32 frames at 432: the token path
   (``encode_video``) vs ``reconstruct`` (tokens + heads);
3. VLM-3R at full size (SigLIP-so400m, CUT3R, Qwen2-7B; random weights built on the meta device and
   materialised on the device) on one 32-frame video: encode, prefill, decode 16 tokens;
4. a few training steps of the full-size model as the reference trains (LoRA r 128 / alpha 256 on the LLM,
   fusion block and projector in full, batch 1, gradient checkpointing, AdamW): seconds per step.

Sections 2-4 run in ``--dtype``: bf16 on a GPU (as the reference runs), fp32 on a CPU, where bf16 without bf16
units (no AVX-512 BF16 / AMX) is many times slower, its convolutions most of all; the bf16-vs-fp32 part of
section 1 runs when the dtype is bf16. ``--tiny`` runs sections 2-4 at the tiny config instead (the tests run it
on the CPU so that it never rots). One JSON (``--out``) and a table on stdout; a section that fails is recorded
with its error and the others still run.
Usage: python benchmarks/device_check.py [--tiny] [--device cuda] [--dtype bf16] [--out device_check.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import resource
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vlm3r.model.config import Vlm3rConfig  # noqa: E402
from vlm3r.model.cut3r import Cut3r, Cut3rConfig  # noqa: E402
from vlm3r.model.modeling_vlm3r import Vlm3rModel  # noqa: E402

FRAMES = 32
# The Qwen2 ids of vlm3r.model.prompt's chat_prompt(*video_question("These are frames of a video.")) before and
# after its <image>, and of the answer "B<|im_end|>\n", kept as data so that the device machine needs no tokenizer
# files; tests/test_architecture.py checks them against the prompt module.
PROMPT = [151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872, 198]  # system + user
QUESTION = [198, 9485, 525, 14087, 315, 264, 2766, 13, 151645, 198, 151644, 77091, 198]
ANSWER = [33, 151645, 198]
NEW_TOKENS = 16
TRAIN_STEPS = 3


def dtype_name(dtype: torch.dtype) -> str:
    return next(name for name, value in DTYPES.items() if value == dtype)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # the process's, on the CPU


def timed(device: torch.device, fn):
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
TINY_DPT = {"dpt_feature_dim": 32, "dpt_last_dim": 16, "dpt_layer_dims": (8, 16, 32, 64)}


def default_dtype(device: torch.device) -> str:
    """bf16 on a GPU, as the reference runs; fp32 on a CPU (see the module docstring)."""
    return "bf16" if device.type == "cuda" else "fp32"


def random_model(config: Vlm3rConfig, device: torch.device, dtype: torch.dtype, seed: int = 0) -> Vlm3rModel:
    """Random weights materialised where the model runs: built on the meta device, then filled in place."""
    with torch.device("meta"):
        model = Vlm3rModel(config)
    model = model.to_empty(device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("norm.weight", "layer_norm1.weight", "layer_norm2.weight")):
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02, generator=generator)
    model._rebuild_buffers()
    return model.to(dtype).eval()


def video_pixels(config: Vlm3rConfig, frames: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    size = config.vision.image_size
    return (torch.rand(frames, 3, size, size, generator=g) * 2 - 1).to(device, dtype)


def section_parity(device: torch.device, dtype: torch.dtype) -> dict:
    """The tiny model's greedy answer on the CPU (``cpu_answer``, the reference), and on another device its fp32
    logits and answer against it (and in bf16 where the run is bf16). On the CPU there is nothing to compare."""
    torch.manual_seed(0)
    cpu_model = Vlm3rModel(Vlm3rConfig.tiny()).eval()
    ids = PROMPT + [cpu_model.config.image_token_index] + QUESTION
    pixels = video_pixels(cpu_model.config, 4, torch.device("cpu"), torch.float32)
    with torch.no_grad():
        cpu_logits = cpu_model([ids], [cpu_model.visual_embeddings(pixels)]).logits.float()
        cpu_answer = cpu_model.generate([ids], [cpu_model.visual_embeddings(pixels)], NEW_TOKENS)[0]
    out = {"cpu_answer": cpu_answer}
    if device.type == "cpu":
        return out
    with torch.no_grad():
        model = cpu_model.to(device)
        fp32_visual = model.visual_embeddings(pixels.to(device))
        fp32_logits = model([ids], [fp32_visual]).logits.float().cpu()
        fp32_answer = model.generate([ids], [fp32_visual], NEW_TOKENS)[0]
    scale = cpu_logits.abs().max().item()
    out["fp32_max_abs_diff_rel"] = (fp32_logits - cpu_logits).abs().max().item() / scale
    out["fp32_same_answer"] = fp32_answer == cpu_answer
    if dtype == torch.bfloat16:
        with torch.no_grad():
            bf16 = model.to(torch.bfloat16)
            bf16_visual = bf16.visual_embeddings(pixels.to(device, torch.bfloat16))
            bf16_logits = bf16([ids], [bf16_visual]).logits.float().cpu()
        out["bf16_max_abs_diff_rel"] = (bf16_logits - cpu_logits).abs().max().item() / scale
        out["bf16_same_argmax_share"] = (bf16_logits.argmax(-1) == cpu_logits.argmax(-1)).float().mean().item()
    return out


def section_cut3r(device: torch.device, tiny: bool, dtype: torch.dtype) -> dict:
    # tiny: the tiny encoder with a DPT head of its size too (the tiny config's heads are full width: 57M weights)
    config = dataclasses.replace(Vlm3rConfig.tiny().cut3r, **TINY_DPT) if tiny else Cut3rConfig.full()
    size = 96 if tiny else 432
    torch.manual_seed(0)
    with torch.device("meta"):
        model = Cut3r(config, with_heads=True)
    model = model.to_empty(device=device)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    model = model.to(dtype).eval().requires_grad_(False)
    frames = (torch.rand(FRAMES, 3, size, size, device=device) * 2 - 1).to(dtype)
    out = {"frames": FRAMES, "size": size, "dtype": dtype_name(dtype),
           "parameters": sum(p.numel() for p in model.parameters())}
    with torch.inference_mode():
        model.encode_video(frames[:2])  # warm-up
        for name, run in (("tokens", lambda: model.encode_video(frames)), ("reconstruct",
                                                                          lambda: model.reconstruct(frames))):
            reset_peak(device)
            _, seconds = timed(device, run)
            out[f"{name}_s"], out[f"{name}_peak_gib"] = seconds, peak_gib(device)
    out["reconstruct_over_tokens"] = out["reconstruct_s"] / out["tokens_s"]
    return out


def section_vlm3r(device: torch.device, tiny: bool, dtype: torch.dtype) -> dict:
    config = Vlm3rConfig.tiny(num_frames=FRAMES) if tiny else Vlm3rConfig.full(spatial_tower_select_feature="all")
    reset_peak(device)
    model, build_s = timed(device, lambda: random_model(config, device, dtype))
    pixels = video_pixels(config, FRAMES, device, dtype)
    out = {"dtype": dtype_name(dtype), "build_s": build_s, "parameters": sum(p.numel() for p in model.parameters()),
           "visual_tokens": FRAMES * config.tokens_per_frame}
    with torch.inference_mode():
        visual, out["encode_s"] = timed(device, lambda: model.visual_embeddings(pixels))
        prefix, out["prefill_s"] = timed(device, lambda: model.prefill(PROMPT, visual))
        answer, out["decode_s"] = timed(device, lambda: model.generate_from_prefix(prefix, [QUESTION], NEW_TOKENS))
    out["decoded_tokens"] = len(answer[0])
    out["peak_gib"] = peak_gib(device)
    return out


def section_training(device: torch.device, tiny: bool, dtype: torch.dtype) -> dict:
    from vlm3r.training.lora import add_lora, set_trainable

    config = Vlm3rConfig.tiny(num_frames=FRAMES) if tiny else Vlm3rConfig.full(spatial_tower_select_feature="all")
    if device.type == "cuda":
        torch.cuda.empty_cache()
    reset_peak(device)
    model = random_model(config, device, dtype)
    model.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    add_lora(model, r=128, alpha=256, dropout=0.05)
    model.to(device=device, dtype=dtype)
    set_trainable(model)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-5)
    pixels = video_pixels(config, FRAMES, device, dtype)
    ids = PROMPT + [config.image_token_index] + QUESTION + ANSWER
    labels = [config.ignore_index] * (len(ids) - len(ANSWER)) + ANSWER
    times = []
    for _ in range(TRAIN_STEPS):
        def step():
            loss = model([ids], pixel_values=[pixels], labels=[labels]).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
            optimizer.step()
            optimizer.zero_grad()
            return loss.item()
        loss, seconds = timed(device, step)
        times.append(seconds)
    return {"dtype": dtype_name(dtype), "steps": TRAIN_STEPS, "first_step_s": times[0],
            "step_s": min(times[1:] or times), "last_loss": loss,
            "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "peak_gib": peak_gib(device)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="every section at the tiny config (CPU tests)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), help="sections 2-4 (default: bf16 on cuda, fp32 on cpu)")
    parser.add_argument("--out", type=Path, default=Path("device_check.json"))
    parser.add_argument("--sections", default="parity,cut3r,vlm3r,training")
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = DTYPES[args.dtype or default_dtype(device)]
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
              or platform.machine(), "tiny": args.tiny, "torch": torch.__version__,
              "cuda": torch.version.cuda, "python": platform.python_version(), "dtype": dtype_name(dtype),
              "sections": {}}
    runs = {"parity": lambda: section_parity(device, dtype), "cut3r": lambda: section_cut3r(device, args.tiny, dtype),
            "vlm3r": lambda: section_vlm3r(device, args.tiny, dtype),
            "training": lambda: section_training(device, args.tiny, dtype)}
    for name in args.sections.split(","):
        start = time.perf_counter()
        try:
            values = runs[name]()
        except Exception as exc:  # recorded, and the next section still runs
            values = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]}
        values["section_s"] = time.perf_counter() - start
        result["sections"][name] = values
        print(f"{name}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in values.items() if k != "traceback"), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    if any("error" in v for v in result["sections"].values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
