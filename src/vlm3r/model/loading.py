"""Reading VLM-3R from local files in the released layouts (docs/design.md, model §4.2-4.4) into our config and
state dict; ``Vlm3rModel.from_pretrained`` builds the model from them.

Files:
- ``base``: LLaVA-Video-7B-Qwen2 shards (LLM, SigLIP, projector, newline) with their index and tokenizer;
- ``model``: the VLM-3R folder: ``config.json``, ``non_lora_trainables.bin`` (fusion block and projector, which
  override the base's) and a peft LoRA adapter (``adapter_config.json`` + ``adapter_model.bin|safetensors``),
  merged here as W + (alpha / r) * B @ A in fp32, cast once to the run's dtype;
- ``cut3r``: the CUT3R ``.pth``.

Where each size comes from, as in the official loader:
- Qwen2: the model folder's config.json (``hidden_size``, ``num_hidden_layers``, ...);
- SigLIP: the vision tower's own config.json, named by ``mm_vision_tower``: a local folder, an entry already in
  the local Hugging Face cache (offline), or the built-in so400m config for ``google/siglip-so400m-patch14-384``;
  VLM-3R keeps all its layers but the last. Otherwise the error says what the weights fix and what they cannot
  (the head count);
- CUT3R: the ``.pth``'s ``args.model``;
- fusion block: 18 heads (fixed in the official code), key/value width = CUT3R's decoder width;
- a folder written by vlm3r carries its whole config in a ``vlm3r`` section, which is read first.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from vlm3r.model.checkpoint import (CheckpointError, checkpoint_dirs, load_torch_file, read_json, read_safetensors,
                                    read_shards)
from vlm3r.model.config import SO400M_ID, ConfigError, Vlm3rConfig, VisionConfig
from vlm3r.model.cut3r import Cut3rConfig, read_cut3r_weights
from vlm3r.model.keys import (NON_LORA_FILE, RELEASED_NAMES, SPATIAL_PREFIX, adapter_module, from_released,
                              remap_non_lora)

log = logging.getLogger(__name__)

VISION_RELEASED = dict(RELEASED_NAMES)["vision_tower."]
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


class Vlm3rCheckpointError(CheckpointError):
    """Missing or mismatched weights or config; the message names the folder or file, the keys or the field, and
    what to download or pass."""


@dataclass(frozen=True)
class ReleaseFiles:
    """Where a model's parts are: ``model`` holds config.json; ``base`` the safetensors weights and tokenizer."""

    model: Path
    base: Path
    cut3r: Path | None
    adapter: bool
    config: dict

    @property
    def config_path(self) -> Path:
        return self.model / "config.json"


def _local(path, owner: Path) -> Path:
    """A path from config.json: relative ones are relative to the folder that holds it."""
    path = Path(path)
    return path if path.is_absolute() else owner / path


def release_files(model_path: Path | str, base: Path | str | None = None,
                  cut3r: Path | str | None = None) -> ReleaseFiles:
    """The files of a model folder. A folder written by ``vlm3r train`` names its base and CUT3R in
    config.json (``model_base``, ``cut3r_weights``); they are used when not given here."""
    model = Path(model_path)
    if not (model / "config.json").is_file():
        checkpoints = [p for p in checkpoint_dirs(model) if (p / "config.json").is_file()]
        if checkpoints:
            latest = checkpoints[-1]
            raise Vlm3rCheckpointError(f"{model}: no config.json: this training run has not finished; its latest "
                                       f"checkpoint is {latest} (pass that as --model, or finish the run with "
                                       "vlm3r train --resume latest)")
        raise Vlm3rCheckpointError(
            f"{model}: no config.json. Download the VLM-3R weights (e.g. Journey9ni/vlm-3r-llava-qwen2-lora) "
            "into this folder, and the base lmms-lab/LLaVA-NeXT-Video-7B-Qwen2 into a folder passed as the base "
            "(README.md, \"Weights\")")
    config = read_json(model / "config.json", Vlm3rCheckpointError)
    adapter = (model / ADAPTER_CONFIG).is_file() or any((model / name).is_file() for name in ADAPTER_WEIGHTS)
    if base is None and config.get("model_base"):
        base = _local(config["model_base"], model)
    if cut3r is None and config.get("cut3r_weights"):
        cut3r = _local(config["cut3r_weights"], model)
    if base is None and adapter:
        raise Vlm3rCheckpointError(f"{model}: a LoRA adapter needs its base model: pass the local "
                                   "LLaVA-NeXT-Video-7B-Qwen2 folder (lmms-lab/LLaVA-NeXT-Video-7B-Qwen2) as base "
                                   "(--base)")
    base = Path(base) if base is not None else model
    if not base.is_dir():
        raise Vlm3rCheckpointError(f"{base}: the base model folder does not exist (from {model / 'config.json'})")
    return ReleaseFiles(model, base, Path(cut3r) if cut3r is not None else None, adapter, config)


# ---------------------------------------------------------------------- sizes
def hf_cache_dir() -> Path:
    """The local Hugging Face hub cache in huggingface_hub's order (HF_HUB_CACHE, the legacy
    HUGGINGFACE_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub), read now
    rather than when huggingface_hub was imported."""
    def expand(path: str) -> str:
        return os.path.expandvars(os.path.expanduser(path))

    env = os.environ
    home = expand(env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or expand("~/.cache"), "huggingface"))
    return Path(expand(env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")))


def _cached_config(repo_id: str) -> Path | None:
    """config.json of a hub repository if it is already in the local cache; never downloads."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json", cache_dir=str(hf_cache_dir()))
    except ValueError:  # not a valid repository id (e.g. a path)
        return None
    return Path(found) if isinstance(found, str) else None


def _tower_folder_config(folder: Path) -> Path | None:
    path = folder / "config.json"
    return path if folder.is_dir() and path.is_file() else None


def resolve_vision_config(name: str | None, tensors: dict[str, torch.Tensor], where: str,
                          search: tuple[Path, ...] = (), override: Path | str | None = None) -> VisionConfig:
    """The SigLIP tower's sizes from its own config (see the module docstring). ``override``: a folder holding the
    tower's config.json, taking the place of ``mm_vision_tower``; ``search``: folders a relative name may be in."""
    if override is not None:
        path = _tower_folder_config(Path(override))
        if path is None:
            raise Vlm3rCheckpointError(f"{override}: no config.json of a vision tower in this folder")
        return VisionConfig.from_tower_config(read_json(path, Vlm3rCheckpointError), str(path))
    if name:
        # a relative name is looked up in the model's own folders first, the working directory (where the
        # official code looks) last: a folder of that name where vlm3r runs does not replace the model's
        relative = not Path(name).is_absolute()
        candidates = [folder / name for folder in search if relative] + [Path(name)]
        for folder in candidates:
            path = _tower_folder_config(folder)
            if path is not None:
                return VisionConfig.from_tower_config(read_json(path, Vlm3rCheckpointError), str(path))
        path = _cached_config(name)
        if path is not None:
            return VisionConfig.from_tower_config(read_json(path, Vlm3rCheckpointError), str(path))
        if name == SO400M_ID:
            return VisionConfig()
    raise Vlm3rCheckpointError(_unresolved_tower_message(name, tensors, where))


def infer_vision_sizes(tensors: dict[str, torch.Tensor]) -> dict[str, int]:
    """What the SigLIP weights of a base checkpoint fix: width, patch, grid, MLP width, layers present."""
    sizes = {}
    patch = tensors.get(VISION_RELEASED + "embeddings.patch_embedding.weight")
    if patch is not None:
        sizes.update(hidden_size=patch.shape[0], num_channels=patch.shape[1], patch_size=patch.shape[-1])
    positions = tensors.get(VISION_RELEASED + "embeddings.position_embedding.weight")
    if positions is not None:
        sizes["grid"] = math.isqrt(positions.shape[0])
    fc1 = tensors.get(VISION_RELEASED + "encoder.layers.0.mlp.fc1.weight")
    if fc1 is not None:
        sizes["intermediate_size"] = fc1.shape[0]
    layers = {k[len(VISION_RELEASED):].split(".")[2] for k in tensors if k.startswith(VISION_RELEASED + "encoder.")}
    sizes["layers_in_checkpoint"] = len(layers)
    return sizes


def _unresolved_tower_message(name: str | None, tensors: dict, where: str) -> str:
    sizes = infer_vision_sizes(tensors)
    fixed = ", ".join(f"{k}={v}" for k, v in sizes.items())
    what = f"mm_vision_tower {name!r}" if name else "no mm_vision_tower"
    return (f"{where}: {what}: not a local folder with a config.json, not in the local Hugging Face cache "
            f"({hf_cache_dir()}) and not {SO400M_ID}. The weights fix {fixed or 'nothing (no SigLIP weights)'}, "
            "but not num_attention_heads (nor the exact image_size, hidden_act, layer_norm_eps): pass the folder "
            "with the tower's config.json as vision_tower (--vision-tower)")


def _read_cut3r(files: ReleaseFiles, fallback: Cut3rConfig | None) -> tuple[Cut3rConfig, dict]:
    if files.cut3r is None:
        raise Vlm3rCheckpointError(f"{files.model}: this model needs CUT3R weights: download "
                                   "cut3r_512_dpt_4_64.pth (from the CUT3R release) and pass it as cut3r (--cut3r)")
    config, state, _ = read_cut3r_weights(files.cut3r, with_heads=False, fallback=fallback)
    return config, {SPATIAL_PREFIX + k: v for k, v in state.items()}


def release_config(files: ReleaseFiles, tensors: dict[str, torch.Tensor], vision_tower: Path | str | None = None,
                   **overrides) -> tuple[Vlm3rConfig, dict[str, torch.Tensor]]:
    """The model's config read from the files (see the module docstring) and CUT3R's weights in our names
    (empty without fusion). ``tensors``: the base checkpoint's, for sizes the error message can name."""
    raw, where = files.config, str(files.config_path)
    try:
        if "vlm3r" in raw:  # written by vlm3r: the whole config
            config = dataclasses.replace(Vlm3rConfig.from_dict(raw["vlm3r"], f"{where}: vlm3r"), **overrides)
            if not config.fusion:
                return config, {}
            cut3r_config, cut3r_state = _read_cut3r(files, fallback=config.cut3r)
            return dataclasses.replace(config, cut3r=cut3r_config), cut3r_state
        vision = resolve_vision_config(raw.get("mm_vision_tower") or raw.get("vision_tower"), tensors, where,
                                       (files.model, files.base), vision_tower)
        fusion = overrides.get("fusion", Vlm3rConfig.declares_spatial_tower(raw))
        cut3r_config, cut3r_state = _read_cut3r(files, None) if fusion else (None, {})
        return Vlm3rConfig.from_released(raw, vision, cut3r_config, where, **overrides), cut3r_state
    except ConfigError as exc:
        raise Vlm3rCheckpointError(str(exc)) from exc


# ---------------------------------------------------------------------- weights
def released_to_ours(tensors: dict[str, torch.Tensor], vision_layers: int) -> dict[str, torch.Tensor]:
    """Checkpoint names -> ours, dropping what the model does not use (``keys.from_released``)."""
    out = {}
    for key, value in tensors.items():
        target = from_released(key, vision_layers)
        if target is not None:
            out[target] = value
    return out


def read_adapter(adapter_dir: Path) -> tuple[dict[str, torch.Tensor], float, Path]:
    """(tensors, scale, file) of a peft LoRA adapter folder; scale alpha / r (alpha / sqrt(r) with rsLoRA)."""
    config_path = adapter_dir / ADAPTER_CONFIG
    if not config_path.is_file():
        raise Vlm3rCheckpointError(f"{adapter_dir}: adapter weights but no {ADAPTER_CONFIG} (r, lora_alpha)")
    config = read_json(config_path, Vlm3rCheckpointError)
    for name in ("r", "lora_alpha"):
        if not isinstance(config.get(name), (int, float)) or config[name] <= 0:
            raise Vlm3rCheckpointError(f"{config_path}: {name}: expected a positive number, got {config.get(name)!r}")
    if config.get("use_dora"):
        raise Vlm3rCheckpointError(f"{config_path}: use_dora: DoRA adapters are not supported")
    if config.get("fan_in_fan_out"):
        raise Vlm3rCheckpointError(f"{config_path}: fan_in_fan_out: not supported (Qwen2 uses nn.Linear)")
    root = math.sqrt(config["r"]) if config.get("use_rslora") else config["r"]
    scale = float(config["lora_alpha"]) / float(root)
    path = next((adapter_dir / n for n in ADAPTER_WEIGHTS if (adapter_dir / n).is_file()), None)
    if path is None:
        raise Vlm3rCheckpointError(f"{adapter_dir}: {ADAPTER_CONFIG} but no {' or '.join(ADAPTER_WEIGHTS)}")
    tensors = (read_safetensors(path, Vlm3rCheckpointError) if path.suffix == ".safetensors"
               else load_torch_file(path, Vlm3rCheckpointError))
    return tensors, scale, path


def merge_lora(state: dict[str, torch.Tensor], adapter_dir: Path, dtype: torch.dtype = torch.float32) -> int:
    """Add (B @ A) * scale of every adapter module to its weight, computed in fp32 and cast once to ``dtype``
    (the run's: one rounding, and a 7B model never holds its merged LLM in fp32); returns the modules merged."""
    adapter, scale, path = read_adapter(adapter_dir)
    keys_a = [k for k in adapter if ".lora_A." in k]
    if not keys_a:
        raise Vlm3rCheckpointError(f"{path}: no lora_A tensors (a LoRA adapter must adapt some module)")
    stray = sorted(k for k in adapter if ".lora_A." not in k and ".lora_B." not in k)
    if stray:
        raise Vlm3rCheckpointError(f"{path}: tensors that are not LoRA A/B: {', '.join(stray[:10])}")
    for key_a in keys_a:
        key_b = key_a.replace(".lora_A.", ".lora_B.")
        if key_b not in adapter:
            raise Vlm3rCheckpointError(f"{path}: {key_a} has no matching {key_b}")
        target = adapter_module(key_a)
        if target not in state:
            raise Vlm3rCheckpointError(f"{path}: {key_a} adapts {target}, which the model lacks")
        lora_a, lora_b, base = adapter[key_a], adapter[key_b], state[target]
        if lora_a.ndim != 2 or lora_b.ndim != 2 or lora_b.shape[1] != lora_a.shape[0] or \
                (lora_b.shape[0], lora_a.shape[1]) != tuple(base.shape):
            raise Vlm3rCheckpointError(f"{path}: {key_a} {tuple(lora_a.shape)} and lora_B {tuple(lora_b.shape)} "
                                       f"do not fit {target} {tuple(base.shape)}")
        merged = base.to(torch.float32) + (lora_b.to(torch.float32) @ lora_a.to(torch.float32)) * scale
        state[target] = merged.to(dtype)
    unused = len(adapter) - 2 * len(keys_a)
    if unused:
        raise Vlm3rCheckpointError(f"{path}: {unused} lora_B tensors without a lora_A")
    return len(keys_a)


def read_release(files: ReleaseFiles, vision_tower: Path | str | None = None, dtype: torch.dtype = torch.float32,
                 **overrides) -> tuple[Vlm3rConfig, dict[str, torch.Tensor]]:
    """(config, every weight in our names): the base shards, then CUT3R, then ``non_lora_trainables.bin`` (which
    overrides both), then the LoRA merged into ``dtype`` (the run's). The result is checked against the model
    when it is built."""
    tensors = read_shards(files.base, Vlm3rCheckpointError)
    config, state = release_config(files, tensors, vision_tower, **overrides)
    state.update(released_to_ours(tensors, config.vision_layers))
    non_lora = files.model / NON_LORA_FILE
    if non_lora.is_file():
        state.update(released_to_ours(remap_non_lora(load_torch_file(non_lora, Vlm3rCheckpointError)),
                                      config.vision_layers))
    if files.adapter:
        log.info("merged %d LoRA modules", merge_lora(state, files.model, dtype))
    return config, state


def load_tokenizer(folder: Path | str):
    """The Qwen2 tokenizer of a base folder (a released VLM-3R LoRA folder has none: it uses the base's)."""
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
