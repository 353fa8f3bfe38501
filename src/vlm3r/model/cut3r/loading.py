"""Loading official CUT3R weights: the released ``.pth`` (a dict with ``args`` and ``model``) or a
``.safetensors`` state dict in the official key layout.

Checks are strict: after removing a ``module.`` prefix, the dead ray-map branch (present in every official
checkpoint, unused by VLM-3R; docs/design.md, cut3r §4.4) and the DPT alias keys (``scratch.layer_rn.{k}`` is the
same tensor as ``scratch.layer{k+1}_rn``), every remaining key must exist in the model with the same shape and
every model weight must be present; otherwise ``Cut3rCheckpointError`` lists what is wrong. Nothing is ever
left randomly initialised. The ``.pth`` is read with ``weights_only=True``; classes its ``args`` need
(argparse, OmegaConf, ...) are replaced by inert placeholders, so no code from the file runs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch.serialization import get_unsafe_globals_in_checkpoint

from vlm3r.model.checkpoint import CheckpointError, check_weights, read_safetensors
from vlm3r.model.cut3r.config import Cut3rConfig
from vlm3r.model.cut3r.model import Cut3r
from vlm3r.model.keys import CUT3R_ALIAS, is_dead_cut3r_key
from vlm3r.utils.fileio import load_torch, read_json

log = logging.getLogger(__name__)
HEADS = "downstream_head."  # the reconstruction heads' key prefix (points, confidences, colours, camera poses)
RELEASED_FILE = "cut3r_512_dpt_4_64.pth"  # the released checkpoint VLM-3R uses; it has the heads


class Cut3rCheckpointError(CheckpointError):
    """A CUT3R checkpoint that cannot be read or does not fit the model; the message names the file and keys."""


class _Inert:
    """Stands in for any class a checkpoint's ``args`` pickles: accepts anything, runs nothing."""

    args: tuple = ()
    kwargs: dict = {}
    state = None

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state):
        self.state = state


def read_checkpoint(path: Path | str) -> tuple[dict[str, torch.Tensor], str | None]:
    """The state dict and, for a ``.pth`` with ``args``, the model constructor string."""
    path = Path(path)
    if not path.is_file():
        raise Cut3rCheckpointError(f"{path}: no such file")
    if path.suffix == ".safetensors":
        return read_safetensors(path, Cut3rCheckpointError), None
    try:
        foreign = get_unsafe_globals_in_checkpoint(str(path))
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise Cut3rCheckpointError(f"{path}: not readable as a torch checkpoint ({exc})") from exc
    holders = [(type(name.rsplit(".", 1)[-1], (_Inert,), {}), name) for name in foreign]
    checkpoint = load_torch(path, Cut3rCheckpointError, "a torch checkpoint", allowed=holders, mmap=True)
    if isinstance(checkpoint, dict) and "model" in checkpoint and isinstance(checkpoint["model"], dict):
        return checkpoint["model"], _find_model_string(checkpoint.get("args"))
    if isinstance(checkpoint, dict) and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        return checkpoint, None
    raise Cut3rCheckpointError(f"{path}: expected a state dict or a dict with 'model' (and 'args')")


def _find_model_string(args) -> str | None:
    """``args.model`` from an argparse Namespace, an OmegaConf config or any inert placeholder of one."""
    seen = 0
    stack = [args]
    while stack and seen < 10_000:
        seen += 1
        item = stack.pop()
        if isinstance(item, _Inert):
            stack += [item.state, *item.args, item.kwargs]
            continue
        if hasattr(item, "__dict__") and not isinstance(item, type):
            stack.append(vars(item))
        if isinstance(item, dict):
            value = item.get("model")
            if isinstance(value, str) and "(" in value:
                return value
            if isinstance(value, _Inert) or isinstance(value, dict):
                stack.append(value)
            stack += [v for k, v in item.items() if k != "model"]
        elif isinstance(item, (list, tuple)):
            stack += list(item)
        elif isinstance(item, str) and item.startswith("ARCroco3DStereo("):
            return item
    return None


def normalize_state_dict(state_dict: dict[str, torch.Tensor], path: Path | str) -> dict[str, torch.Tensor]:
    """Strip ``module.``, drop the dead ray-map keys and the DPT aliases (checking they equal their originals)."""
    if state_dict and all(k.startswith("module.") for k in state_dict):
        state_dict = {k[len("module."):]: v for k, v in state_dict.items()}
    out = {}
    for key, value in state_dict.items():
        if is_dead_cut3r_key(key):
            continue
        alias = CUT3R_ALIAS.match(key)
        if alias:
            original = f"{alias.group(1)}.layer{int(alias.group(2)) + 1}_rn.weight"
            if original in state_dict and not value.is_meta and not torch.equal(state_dict[original], value):
                raise Cut3rCheckpointError(f"{path}: {key} should be the same tensor as {original} but differs")
            if original in state_dict:
                continue
            key = original
        out[key] = value
    return out


def _resolve_config(config, constructor: str | None, path: Path, fallback: Cut3rConfig | None = None) -> Cut3rConfig:
    if config is None and constructor is None and fallback is not None:
        return fallback
    if isinstance(config, Cut3rConfig):
        return config
    if isinstance(config, dict):
        try:
            return Cut3rConfig.from_dict(config, config.get("dpt_override"))
        except (ValueError, TypeError, KeyError) as exc:
            raise Cut3rCheckpointError(f"{path}: the architecture config does not describe a CUT3R ({exc})") from exc
    if config is not None:
        raise TypeError(f"config must be None, a dict or a Cut3rConfig, got {type(config).__name__}")
    if constructor is None:
        raise Cut3rCheckpointError(f"{path}: carries no model configuration (args.model); pass config=")
    try:
        return Cut3rConfig.from_constructor_string(constructor)
    except (ValueError, TypeError) as exc:
        raise Cut3rCheckpointError(f"{path}: args.model cannot be read ({exc})") from exc


def read_architecture_file(path: Path | str | None) -> dict | None:
    """A CUT3R architecture given as a JSON file of the official constructor's fields (``--config``), for
    weights that carry none (``.safetensors``); None for no file."""
    if path is None:
        return None
    return read_json(path, Cut3rCheckpointError, dict, "--config: the CUT3R constructor's fields")


def read_cut3r_weights(weights: Path | str, config: dict | Cut3rConfig | None = None, with_heads: bool | None = None,
                       fallback: Cut3rConfig | None = None) -> tuple[Cut3rConfig, dict[str, torch.Tensor], bool]:
    """(architecture, state dict in our names, whether it keeps the heads) of a CUT3R checkpoint, without building
    the model. The architecture is ``config`` or, when None, the ``.pth``'s ``args.model`` (as the official
    loader takes it), or ``fallback`` for a file without one; ``with_heads=False`` drops the heads' weights,
    None keeps them if the file has them."""
    path = Path(weights)
    raw, constructor = read_checkpoint(path)
    state_dict = normalize_state_dict(raw, path)
    cfg = _resolve_config(config, constructor, path, fallback)
    has_heads = any(k.startswith(HEADS) for k in state_dict)
    with_heads = has_heads if with_heads is None else with_heads
    if not with_heads:
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith(HEADS)}
    return cfg, state_dict, with_heads


def _no_heads_message(path: Path, model: Cut3r) -> str:
    """One line for a file without any head weights (a training run's ``cut3r.pth`` holds the token path only),
    instead of listing every missing head key."""
    head = model.downstream_head
    names = [name for name, module in head.named_children() if any(True for _ in module.parameters())]
    count = sum(1 for k in model.state_dict() if k.startswith(HEADS))
    return (f"{path}: has no reconstruction heads ({HEADS[:-1]}: {', '.join(names)}; {count} weights): it holds "
            "only the token path VLM-3R uses, as a training run's cut3r.pth does. Reconstructing needs the heads: "
            f"use the released {RELEASED_FILE}, which has them")


def load_cut3r(weights: Path | str, config: dict | Cut3rConfig | None = None, device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32, with_heads: bool | None = None) -> Cut3r:
    """Build CUT3R from official weights, frozen. ``config``: None (read ``args.model`` from the ``.pth``), a dict
    of the official constructor keys (optionally with ``dpt_override``), or a ``Cut3rConfig``. ``with_heads``:
    default is whether the checkpoint has them; pass False for the token path only (the heads' weights are
    skipped)."""
    path = Path(weights)
    cfg, state_dict, with_heads = read_cut3r_weights(path, config, with_heads)
    with torch.device("meta"):
        model = Cut3r(cfg, with_heads=with_heads)
    if with_heads and not any(k.startswith(HEADS) for k in state_dict):
        raise Cut3rCheckpointError(_no_heads_message(path, model))
    check_weights({k: tuple(v.shape) for k, v in model.state_dict().items()}, state_dict, f"{path} ({cfg})",
                  Cut3rCheckpointError)
    state_dict = {k: v.to(dtype=dtype) if v.is_floating_point() else v for k, v in state_dict.items()}
    model.load_state_dict(state_dict, strict=True, assign=True)
    log.info("loaded CUT3R from %s", path)
    return model.requires_grad_(False).to(device).eval()  # frozen, as the official loader leaves it
