"""What trains (docs/design.md, model §5.5-5.6): LoRA on the seven Qwen2 projections of every layer, the fusion
block and the projector in full; SigLIP, CUT3R, the LLM's base weights, embeddings, lm_head and the newline
embedding frozen. ``extra_trainable`` adds parameters by name prefix (e.g. ``llm.`` modules for a tiny model
whose random LLM has no language to adapt)."""

from __future__ import annotations

from peft import LoraConfig, get_peft_model

from vlm3r.model.keys import strip_peft
from vlm3r.model.modeling_vlm3r import Vlm3rModel

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
FULLY_TRAINED = ("fusion_block.", "mm_projector.")


def add_lora(model: Vlm3rModel, r: int, alpha: int, dropout: float) -> Vlm3rModel:
    """Wrap the LLM with peft LoRA adapters (bias none, causal LM)."""
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, bias="none", task_type="CAUSAL_LM",
                        target_modules=list(LORA_TARGETS))
    model.llm = get_peft_model(model.llm, config)
    return model


def set_trainable(model: Vlm3rModel, extra_prefixes: tuple[str, ...] = ()) -> list[str]:
    """Freeze everything, then enable LoRA, fusion, projector (and ``extra_prefixes``); returns the names."""
    prefixes = FULLY_TRAINED + tuple(extra_prefixes)
    names = []
    for name, param in model.named_parameters():
        param.requires_grad_("lora_" in name or name.startswith(prefixes) or _matches_base(name, extra_prefixes))
        if param.requires_grad:
            names.append(name)
    return names


def _matches_base(name: str, prefixes: tuple[str, ...]) -> bool:
    """Prefixes are written without peft's wrapper (``llm.lm_head``); match them inside it too."""
    return bool(prefixes) and strip_peft(name).startswith(tuple(prefixes))
