"""Reading checkpoint files and the one strict check both loaders (VLM-3R and CUT3R) apply: every weight of the
model comes from a file and every file tensor lands in the model, with the same shape; otherwise the error
lists the missing, unexpected and mis-shaped keys by name."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open

from vlm3r.errors import Vlm3rError
from vlm3r.utils import fileio
from vlm3r.utils.fileio import load_torch

SHOWN_KEYS = 10  # keys listed per kind in an error message
CHECKPOINT_PREFIX = "checkpoint-"  # a training run's checkpoint folders are checkpoint-<optimizer step>


class CheckpointError(Vlm3rError):
    """Missing, unreadable or mismatched weights; the message names the file or folder and the keys."""


def check_weights(expected: dict[str, tuple[int, ...]], found: dict[str, torch.Tensor], source: str,
                  error: type[CheckpointError] = CheckpointError, optional: tuple[str, ...] = ()) -> None:
    """Raise ``error`` naming what does not fit. ``optional``: prefixes of model keys that may be absent (modules
    initialised anew, e.g. ``fusion_block.`` when training starts from LLaVA-Video)."""
    missing = sorted(k for k in set(expected) - set(found) if not k.startswith(optional or ("\0",)))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(f"{k}: checkpoint {tuple(found[k].shape)}, model {tuple(expected[k])}"
                   for k in set(expected) & set(found) if tuple(found[k].shape) != tuple(expected[k]))
    parts = [f"{len(keys)} {kind}: {', '.join(keys[:SHOWN_KEYS])}{' ...' if len(keys) > SHOWN_KEYS else ''}"
             for kind, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
    if parts:
        raise error(f"{source}: weights do not fit the model: " + "; ".join(parts))


def read_safetensors(path: Path, error: type[CheckpointError] = CheckpointError) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return {key: f.get_tensor(key) for key in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise error(f"{path}: not a readable safetensors file ({exc})") from exc


def read_shards(folder: Path, error: type[CheckpointError] = CheckpointError) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors checkpoint folder (sharded with an index, or ``*.safetensors``)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = read_json(index, error).get("weight_map")
        if not isinstance(weight_map, dict):
            raise error(f"{index}: no weight_map")
        files = sorted(set(weight_map.values()))
    else:
        files = sorted(p.name for p in folder.glob("*.safetensors"))
    if not files:
        raise error(f"{folder}: no safetensors weights (expected the LLaVA-Video-7B-Qwen2 shards)")
    tensors = {}
    for name in files:
        path = folder / name
        if not path.is_file():
            raise error(f"{path}: listed in the index but missing")
        tensors.update(read_safetensors(path, error))
    return tensors


def load_torch_file(path: Path, error: type[CheckpointError] = CheckpointError) -> dict[str, torch.Tensor]:
    """A torch-saved dict of tensors, read with ``weights_only`` (no code from the file runs)."""
    state = load_torch(path, error, "a weights file")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise error(f"{path}: expected a dict of tensors")
    return state


def read_json(path: Path, error: type[CheckpointError] = CheckpointError) -> dict:
    """A JSON object file of a checkpoint (config.json, an index, a tower config)."""
    return fileio.read_json(path, error, dict)


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    """The checkpoint folder of optimizer step ``step`` in a run folder."""
    return run_dir / f"{CHECKPOINT_PREFIX}{step}"


def checkpoint_step(folder: Path) -> int | None:
    """The optimizer step of a ``checkpoint-<step>`` folder; None for any other name (``.partial`` ones too)."""
    step = folder.name.removeprefix(CHECKPOINT_PREFIX)
    return int(step) if folder.name.startswith(CHECKPOINT_PREFIX) and step.isascii() and step.isdigit() else None


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """A run's ``checkpoint-<step>`` folders, oldest step first."""
    found = [p for p in run_dir.glob(f"{CHECKPOINT_PREFIX}*") if checkpoint_step(p) is not None]
    return sorted(found, key=checkpoint_step)
