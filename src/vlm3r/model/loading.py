"""Loading VLM-3R from local files in the released layouts (reference-model.md §4.2-4.4).

- ``base``: LLaVA-Video-7B-Qwen2 shards (``model.*``, ``lm_head.weight``, ``model.vision_tower.vision_tower.
  vision_model.*``, ``model.mm_projector.*``, ``model.image_newline``) with their index and tokenizer files;
- ``model``: the VLM-3R folder: ``config.json``, ``non_lora_trainables.bin`` (``base_model.model.model.
  fusion_block.*`` / ``mm_projector.*``, which override the base projector) and a peft LoRA adapter
  (``adapter_config.json`` + ``adapter_model.bin|safetensors``, keys ``...lora_A.weight`` without ``.default``),
  merged here as W + (alpha / r) * B @ A;
- ``cut3r``: the CUT3R ``.pth``.

The model is built on the meta device and the loaded tensors are assigned into it, so the 7B weights are held
once. Every model weight must come from a file and every file key must land in the model (unused SigLIP
post-layernorm / head / extra layer keys excepted); otherwise ``Vlm3rCheckpointError`` lists the keys.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from vlm3r.model.config import Vlm3rConfig
from vlm3r.model.cut3r import load_cut3r
from vlm3r.model.modeling_vlm3r import Vlm3rModel

log = logging.getLogger(__name__)

VISION_PREFIX = "model.vision_tower.vision_tower.vision_model."
NON_LORA = "non_lora_trainables.bin"


class Vlm3rCheckpointError(ValueError):
    """Missing or mismatched weights; the message names the folder and the keys, and what to download."""


def config_from_released(config: dict) -> Vlm3rConfig:
    """Our config from a released ``config.json`` (LLaVA/Qwen2 fields), or from its ``vlm3r`` section if written
    by vlm3r itself."""
    if "vlm3r" in config:
        from vlm3r.model.cut3r import Cut3rConfig

        section = dict(config["vlm3r"])
        section["cut3r"] = Cut3rConfig(**{**section.get("cut3r", {}),
                                          "dpt_layer_dims": tuple(section.get("cut3r", {}).get("dpt_layer_dims",
                                                                                                (96, 192, 384, 768)))})
        return Vlm3rConfig(**section)
    llm_keys = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "vocab_size", "rope_theta", "rms_norm_eps", "max_position_embeddings",
                "bos_token_id", "eos_token_id")
    llm = {**Vlm3rConfig().llm, **{k: config[k] for k in llm_keys if k in config}, "tie_word_embeddings": False}
    select = config.get("spatial_tower_select_feature") or "patch_tokens"
    return Vlm3rConfig(llm=llm, fusion=bool(config.get("spatial_tower") or config.get("mm_spatial_tower")),
                       spatial_tower_select_feature="all" if select == "all_tokens" else select,
                       pool_mode=config.get("mm_spatial_pool_mode", "bilinear"))


def read_shards(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors checkpoint folder (sharded with an index, or one model.safetensors)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        files = sorted(p.name for p in folder.glob("*.safetensors"))
    if not files:
        raise Vlm3rCheckpointError(f"{folder}: no safetensors weights (expected the LLaVA-Video-7B-Qwen2 shards)")
    tensors = {}
    for name in files:
        path = folder / name
        if not path.is_file():
            raise Vlm3rCheckpointError(f"{path}: listed in the index but missing")
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
    return tensors


def _load_bin(path: Path) -> dict[str, torch.Tensor]:
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for unreadable files
        raise Vlm3rCheckpointError(f"{path}: not a readable weights file ({exc})") from exc


def remap_base(key: str, vision_layers: int) -> str | None:
    """Checkpoint key -> our module key; None for keys the model does not use."""
    if key.startswith(VISION_PREFIX):
        rest = key[len(VISION_PREFIX):]
        if rest.startswith(("post_layernorm.", "head.")):
            return None
        if rest.startswith("encoder.layers.") and int(rest.split(".")[2]) >= vision_layers:
            return None  # the dropped last SigLIP layer
        return "vision_tower." + rest
    for prefix, target in (("model.mm_projector.", "mm_projector."), ("model.fusion_block.", "fusion_block."),
                           ("model.image_newline", "image_newline")):
        if key.startswith(prefix):
            return target + key[len(prefix):]
    if key.startswith("model.") or key.startswith("lm_head."):
        return "llm." + key
    return key


def remap_non_lora(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The reference's remap of ``non_lora_trainables.bin`` (reference-model.md §4.3 step 4): drop a leading
    ``base_model.``; then, if any key starts with ``model.model.``, drop one leading ``model.`` from every key.
    ``base_model.model.model.fusion_block.x`` -> ``model.fusion_block.x``; ``base_model.model.lm_head.weight``
    -> ``lm_head.weight``."""
    state = {(k[len("base_model."):] if k.startswith("base_model.") else k): v for k, v in state.items()}
    if any(k.startswith("model.model.") for k in state):
        state = {(k[len("model."):] if k.startswith("model.") else k): v for k, v in state.items()}
    return state


def adapter_module(key: str) -> str:
    """``base_model.model.model.layers.0.self_attn.q_proj.lora_A[.default].weight`` -> the LLM module
    ``model.layers.0.self_attn.q_proj``."""
    module = key.split(".lora_")[0]
    return module[len("base_model.model."):] if module.startswith("base_model.model.") else module


def merge_lora(state: dict[str, torch.Tensor], adapter_dir: Path) -> int:
    """Add (alpha / r) * B @ A of every adapter module to its base weight; returns the modules merged."""
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    scale = float(config["lora_alpha"]) / float(config["r"])
    path = adapter_dir / "adapter_model.safetensors"
    if path.is_file():
        with safe_open(str(path), framework="pt") as f:
            adapter = {k: f.get_tensor(k) for k in f.keys()}
    else:
        path = adapter_dir / "adapter_model.bin"
        if not path.is_file():
            raise Vlm3rCheckpointError(f"{adapter_dir}: adapter_config.json but no adapter_model.bin/safetensors")
        adapter = _load_bin(path)
    merged = 0
    for key_a, lora_a in adapter.items():
        if ".lora_A." not in key_a:
            continue
        key_b = key_a.replace(".lora_A.", ".lora_B.")
        if key_b not in adapter:
            raise Vlm3rCheckpointError(f"{path}: {key_a} has no matching {key_b}")
        module = adapter_module(key_a)
        target = "llm." + module + ".weight"
        if target not in state:
            raise Vlm3rCheckpointError(f"{path}: adapter module {module} targets {target}, which the model lacks")
        base = state[target]
        delta = adapter[key_b].to(torch.float32) @ lora_a.to(torch.float32)
        if delta.shape != base.shape:
            raise Vlm3rCheckpointError(f"{path}: {module}: B @ A is {tuple(delta.shape)}, weight {tuple(base.shape)}")
        state[target] = (base.to(torch.float32) + scale * delta).to(base.dtype)
        merged += 1
    return merged


def _read_config(folder: Path) -> dict:
    path = folder / "config.json"
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise Vlm3rCheckpointError(f"{path}: not valid JSON ({exc})") from exc


def _base_state(base: Path, config: Vlm3rConfig) -> dict[str, torch.Tensor]:
    state = {}
    for key, value in read_shards(base).items():
        target = remap_base(key, config.vision_layers)
        if target is not None:
            state[target] = value
    return state


def _add_cut3r(state: dict, config: Vlm3rConfig, cut3r_path, owner: Path) -> None:
    if not config.fusion:
        return
    if cut3r_path is None:
        raise Vlm3rCheckpointError(f"{owner}: this model needs CUT3R weights: download cut3r_512_dpt_4_64.pth "
                                   "(from the CUT3R release) and pass it as cut3r_path (--cut3r)")
    cut3r = load_cut3r(cut3r_path, config=config.cut3r, with_heads=False)
    state.update({f"spatial_tower.{k}": v for k, v in cut3r.state_dict().items()})


def _tokenizer(folder: Path):
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # it reads config.json too, and warns that llava_qwen is not a known type
    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise Vlm3rCheckpointError(f"{folder}: no readable tokenizer files (tokenizer.json / vocab.json, "
                                   f"merges.txt; they come with LLaVA-Video-7B-Qwen2): {exc}") from exc
    finally:
        hf_logging.set_verbosity(verbosity)


def build_from_state(config: Vlm3rConfig, state: dict[str, torch.Tensor], source: str, dtype: torch.dtype,
                     fresh: tuple[str, ...] = ()) -> Vlm3rModel:
    """The model with every weight taken from ``state``, checked key by key. Modules named in ``fresh`` (e.g.
    ``fusion_block`` when training starts from LLaVA-Video) may be absent and are then newly initialised."""
    with torch.device("meta"):
        model = Vlm3rModel(config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(k for k in set(expected) - set(state) if not k.startswith(tuple(f"{m}." for m in fresh)))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(f"{k}: file {tuple(state[k].shape)}, model {expected[k]}" for k in set(expected) & set(state)
                   if tuple(state[k].shape) != expected[k])
    if missing or unexpected or wrong:
        parts = [f"{len(v)} {t}: {', '.join(v[:10])}{' ...' if len(v) > 10 else ''}"
                 for t, v in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if v]
        raise Vlm3rCheckpointError(f"{source}: weights do not fit the model: " + "; ".join(parts))
    model.load_state_dict({k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()},
                          strict=False, assign=True)
    for name in fresh:
        module = getattr(model, name, None)
        if module is not None and any(p.is_meta for p in module.parameters()):
            log.info("%s: %s is not in the checkpoint; initialised anew", source, name)
            setattr(model, name, init_fresh(module, dtype))
    _rebuild_buffers(model)
    return model


def init_fresh(meta_module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """A new copy of a module with the initialisation reference-model.md §3.6 recommends: Linear weights
    normal(0, 0.02) and zero bias (Qwen2's rule, which the reference applies), LayerNorm (1, 0), PyTorch's
    default for the attention's packed projections."""
    module = copy.deepcopy(meta_module).to_empty(device="cpu")
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            nn.init.normal_(sub.weight, std=0.02)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)
        elif isinstance(sub, nn.LayerNorm):
            sub.reset_parameters()
        elif isinstance(sub, nn.MultiheadAttention):
            sub._reset_parameters()
    return module.to(dtype)


def load_vlm3r(model_path: Path | str, cut3r_path: Path | str | None = None, base_path: Path | str | None = None,
               dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> tuple[Vlm3rModel, object]:
    """(model, tokenizer) from local folders in the released layouts (see the module docstring). A folder written
    by ``vlm3r train`` names its base and CUT3R files in config.json; they are used when not given here."""
    model_path = Path(model_path)
    if not (model_path / "config.json").is_file():
        raise Vlm3rCheckpointError(
            f"{model_path}: no config.json. Download the VLM-3R weights (e.g. Journey9ni/vlm-3r-llava-qwen2-lora) "
            "into this folder, and LLaVA-Video-7B-Qwen2 into a folder passed as the base")
    raw_config = _read_config(model_path)
    config = config_from_released(raw_config)
    is_adapter = (model_path / "adapter_config.json").is_file()
    base_path = base_path if base_path is not None else raw_config.get("model_base")
    cut3r_path = cut3r_path if cut3r_path is not None else raw_config.get("cut3r_weights")
    base = Path(base_path) if base_path is not None else (None if is_adapter else model_path)
    if base is None:
        raise Vlm3rCheckpointError(f"{model_path}: a LoRA adapter needs its base model: pass the local "
                                   "LLaVA-Video-7B-Qwen2 folder as base_path (--base)")
    state = _base_state(base, config)
    if (model_path / NON_LORA).is_file():
        for key, value in remap_non_lora(_load_bin(model_path / NON_LORA)).items():
            target = remap_base(key, config.vision_layers)
            if target is not None:
                state[target] = value
    if is_adapter:
        log.info("merged %d LoRA modules", merge_lora(state, model_path))
    _add_cut3r(state, config, cut3r_path, model_path)
    tokenizer = _tokenizer(base)
    model = build_from_state(config, state, f"{model_path} (base {base})", dtype)
    if len(tokenizer) < model.llm.get_input_embeddings().num_embeddings:
        # as the reference: embeddings and lm_head are cut to the tokenizer's length (151646 of 152064 rows)
        model.llm.resize_token_embeddings(len(tokenizer))
    return model.to(device).eval(), tokenizer


def load_for_training(base_path: Path | str, cut3r_path: Path | str | None = None,
                      dtype: torch.dtype = torch.float32, **overrides) -> tuple[Vlm3rModel, object]:
    """The starting point of training (reference-model.md §5.5): LLaVA-Video-7B-Qwen2 (LLM, SigLIP, projector,
    newline) + CUT3R, with a new fusion block. ``overrides`` set Vlm3rConfig fields (fusion,
    spatial_tower_select_feature, ...). The vocabulary keeps the checkpoint's size, as the reference trains."""
    base = Path(base_path)
    if not (base / "config.json").is_file():
        raise Vlm3rCheckpointError(f"{base}: no config.json: download LLaVA-Video-7B-Qwen2 into this folder")
    config = dataclasses.replace(config_from_released(_read_config(base)), **overrides)
    state = _base_state(base, config)
    _add_cut3r(state, config, cut3r_path, base)
    tokenizer = _tokenizer(base)
    return build_from_state(config, state, str(base), dtype, fresh=("fusion_block",)), tokenizer
def _rebuild_buffers(model: Vlm3rModel) -> None:
    """Non-persistent buffers stay on the meta device after loading: compute them again."""
    embeddings = model.vision_tower.embeddings
    embeddings.register_buffer("position_ids", torch.arange(embeddings.num_positions)[None], persistent=False)
    rotary = model.llm.model.rotary_emb
    model.llm.model.rotary_emb = type(rotary)(config=model.llm.config)
    for name, buffer in model.named_buffers():
        if buffer.is_meta:
            raise RuntimeError(f"buffer {name} was not rebuilt after loading")
