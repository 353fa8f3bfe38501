"""Checkpoint key names: the one table between our module names and the files' names (docs/design.md, model
§4.4, cut3r §4.4). Loading and saving both derive from it.

- base / full checkpoints hold ``LlavaQwenForCausalLM`` names (``RELEASED_NAMES``);
- ``non_lora_trainables.bin`` holds ``base_model.model.`` + those names;
- a peft adapter holds ``base_model.model.<LLM module>.lora_{A,B}[.default].weight``;
- a standalone SigLIP folder holds ``vision_model.*``;
- a CUT3R ``.pth`` holds CUT3R's own names, which are ours under ``spatial_tower.``, plus keys VLM-3R never uses;
  inside a LLaVA checkpoint (``non_lora_trainables.bin`` of a run that trained CUT3R) they carry the official
  module path of the spatial tower.
"""

from __future__ import annotations

import re

# (our prefix, released prefix), first match wins in both directions.
RELEASED_NAMES: tuple[tuple[str, str], ...] = (
    ("vision_tower.", "model.vision_tower.vision_tower.vision_model."),
    ("mm_projector.", "model.mm_projector."),
    ("fusion_block.", "model.fusion_block."),
    ("image_newline", "model.image_newline"),
    ("spatial_tower.", "model.spatial_tower.spatial_tower.spatial_model.encoder.cut3r."),
    ("llm.lm_head.", "lm_head."),
    ("llm.model.", "model."),
)
SPATIAL_PREFIX = "spatial_tower."  # CUT3R: a file of its own, not in the base checkpoints
VISION_FILE_PREFIX = "vision_model."  # a standalone SigLIP checkpoint
NON_LORA_PREFIX = "base_model.model."  # non_lora_trainables.bin and peft's wrapper of the LLM
NON_LORA_FILE = "non_lora_trainables.bin"
# SigLIP keys of the base that VLM-3R does not use (features are taken before them).
UNUSED_VISION = ("post_layernorm.", "head.")
# CUT3R keys of every official checkpoint that VLM-3R never uses: the ray-map branch.
CUT3R_DEAD_PREFIXES = ("patch_embed_ray_map.", "enc_blocks_ray_map.", "enc_norm_ray_map.")
CUT3R_DEAD_KEYS = ("masked_img_token", "masked_ray_map_token")
# CUT3R's DPT heads carry each ``scratch.layer{k+1}_rn`` twice, also as ``scratch.layer_rn.{k}``.
CUT3R_ALIAS = re.compile(r"^(downstream_head\.dpt_\w+\.scratch)\.layer_rn\.(\d)\.weight$")


def strip_peft(key: str) -> str:
    """Our key of a parameter inside the peft-wrapped LLM, without the wrapper: ``llm.base_model.model.x`` ->
    ``llm.x``, ``...q_proj.base_layer.weight`` -> ``...q_proj.weight``."""
    if key.startswith("llm." + NON_LORA_PREFIX):
        key = "llm." + key[len("llm." + NON_LORA_PREFIX):]
    return key.replace(".base_layer.", ".")


def to_released(key: str) -> str:
    """Our key -> its ``LlavaQwenForCausalLM`` name."""
    key = strip_peft(key)
    for ours, released in RELEASED_NAMES:
        if key.startswith(ours):
            return released + key[len(ours):]
    raise KeyError(f"{key}: no released name")


def from_released(key: str, vision_layers: int) -> str | None:
    """A base/full checkpoint key -> ours; None for keys the model does not use (SigLIP's post-layernorm and
    head, and the tower's last layer, which VLM-3R drops). Unknown names come back unchanged, so that the
    strict check reports them as unexpected."""
    for ours, released in RELEASED_NAMES:
        if key.startswith(released):
            rest = key[len(released):]
            if ours == "vision_tower." and _unused_vision(rest, vision_layers):
                return None
            return ours + rest
    return key


def _unused_vision(rest: str, vision_layers: int) -> bool:
    if rest.startswith(UNUSED_VISION):
        return True
    parts = rest.split(".")
    return rest.startswith("encoder.layers.") and parts[2].isdigit() and int(parts[2]) >= vision_layers


def to_vision_file(key: str) -> str:
    """Our ``vision_tower.*`` key -> its name in a standalone SigLIP checkpoint."""
    return VISION_FILE_PREFIX + key[len("vision_tower."):]


def to_non_lora(key: str) -> str:
    return NON_LORA_PREFIX + to_released(key)


def remap_non_lora(state: dict) -> dict:
    """The official remap of ``non_lora_trainables.bin`` (docs/design.md, model §4.3, the second step): drop a leading
    ``base_model.``; then, if any key starts with ``model.model.``, drop one leading ``model.`` from every key.
    ``base_model.model.model.fusion_block.x`` -> ``model.fusion_block.x``; ``base_model.model.lm_head.weight``
    -> ``lm_head.weight``. The result is in base-checkpoint names."""
    state = {(k[len("base_model."):] if k.startswith("base_model.") else k): v for k, v in state.items()}
    if any(k.startswith("model.model.") for k in state):
        state = {(k[len("model."):] if k.startswith("model.") else k): v for k, v in state.items()}
    return state


def adapter_module(key: str) -> str:
    """``base_model.model.model.layers.0.self_attn.q_proj.lora_A[.default].weight`` -> our key of the weight it
    adapts, ``llm.model.layers.0.self_attn.q_proj.weight``."""
    module = key.split(".lora_")[0]
    module = module[len(NON_LORA_PREFIX):] if module.startswith(NON_LORA_PREFIX) else module
    return f"llm.{module}.weight"


def cut3r_file_key(key: str) -> str:
    """Our ``spatial_tower.*`` key -> its name in a CUT3R checkpoint."""
    return key[len(SPATIAL_PREFIX):]


def is_dead_cut3r_key(key: str) -> bool:
    return key.startswith(CUT3R_DEAD_PREFIXES) or key in CUT3R_DEAD_KEYS
