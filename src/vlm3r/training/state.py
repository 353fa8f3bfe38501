"""The resumable state of a training run, saved and read without unpickling objects: a checkpoint from elsewhere
can be resumed without running code from it.

``checkpoint-N/state/`` holds
- ``trainable.safetensors``: every trained parameter (the frozen ones come from the base, as at the start);
- ``optimizer.pt``: the optimizer's state dict (tensors, numbers, tuples), read with ``weights_only=True``; under
  DeepSpeed, whose ZeRO optimizer keeps a partition per process, ``optimizer-<rank>.pt`` per process;
- ``scheduler.json``: the learning-rate schedule's state;
- ``rng-<rank>.json`` + ``rng-<rank>.safetensors``: Python's, NumPy's and torch's random states of each process.

accelerate's own ``save_state`` pickles the scheduler and the random states and reads them back with
``weights_only=False``; a crafted ``.pkl`` would run code on ``--resume``. Checkpoints in that layout are
refused. DeepSpeed's ZeRO optimizer state holds three small DeepSpeed classes besides tensors; they are the
explicit allow-list of the ``weights_only`` load (``DEEPSPEED_STATE_CLASSES``), nothing else is accepted.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from vlm3r.errors import Vlm3rError
from vlm3r.utils.fileio import atomic_save_safetensors, atomic_torch_save, atomic_write_text, load_torch, read_json

TRAINABLE = "trainable.safetensors"
OPTIMIZER = "optimizer.pt"
SCHEDULER = "scheduler.json"
DEEPSPEED_STATE_CLASSES = (("deepspeed.utils.tensor_fragment", "fragment_address"),
                           ("deepspeed.runtime.fp16.loss_scaler", "LossScaler"),
                           ("deepspeed.runtime.fp16.loss_scaler", "DynamicLossScaler"),
                           ("deepspeed.runtime.zero.config", "ZeroStageEnum"))


class ResumeError(Vlm3rError):
    """A checkpoint whose state cannot be read safely or does not fit the run; the message names the file."""


def _rng_state() -> tuple[dict, dict[str, torch.Tensor]]:
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    meta = {"python": [version, list(mt), gauss], "numpy": [kind, int(pos), int(has_gauss), float(cached)]}
    tensors = {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(keys.astype(np.int64))}
    if torch.cuda.is_available():
        for k, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda_{k}"] = state
    return meta, tensors


def _set_rng_state(meta: dict, tensors: dict[str, torch.Tensor]) -> None:
    version, mt, gauss = meta["python"]
    random.setstate((version, tuple(mt), gauss))
    kind, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, tensors["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[f"cuda_{k}"] for k in range(len(tensors)) if f"cuda_{k}" in tensors]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def _optimizer_file(accelerator) -> tuple[str, bool]:
    """The optimizer state's file name, and whether every process writes its own (DeepSpeed's partitions)."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        return f"optimizer-{accelerator.process_index}.pt", True
    return OPTIMIZER, False


def _allowed_classes(per_process: bool) -> list:
    """The classes a ``weights_only`` load of the optimizer state may build: DeepSpeed's, under DeepSpeed."""
    if not per_process:
        return []
    import importlib

    return [getattr(importlib.import_module(module), name) for module, name in DEEPSPEED_STATE_CLASSES]


def save_state(folder: Path, accelerator, model, optimizer, scheduler) -> None:
    """Write the run's state (see the module docstring); every process writes its random state."""
    folder.mkdir(parents=True, exist_ok=True)
    rank = accelerator.process_index
    meta, tensors = _rng_state()
    atomic_write_text(folder / f"rng-{rank}.json", json.dumps(meta))
    atomic_save_safetensors(tensors, folder / f"rng-{rank}.safetensors")
    optimizer_file, per_process = _optimizer_file(accelerator)
    if per_process or accelerator.is_main_process:
        atomic_torch_save(optimizer.state_dict(), folder / optimizer_file)
    if accelerator.is_main_process:
        atomic_save_safetensors({n: p for n, p in model.named_parameters() if p.requires_grad}, folder / TRAINABLE)
        atomic_write_text(folder / SCHEDULER, json.dumps(scheduler.state_dict()))


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own types for corrupt files
        raise ResumeError(f"{path}: not readable as the run's state ({exc})") from exc


def load_state(folder: Path, accelerator, model, optimizer, scheduler) -> None:
    """Restore what ``save_state`` wrote; refuses pickled (accelerate-layout) or unreadable state by name."""
    pickled = sorted(p.name for p in folder.glob("*.pkl")) if folder.is_dir() else []
    if pickled:
        raise ResumeError(f"{folder}: pickled state ({', '.join(pickled)}), as older vlm3r versions wrote it "
                          "through accelerate; unpickling could run code, so it is not resumed. Start the run "
                          "again, or resume from a checkpoint written by this version")
    name, per_process = _optimizer_file(accelerator)
    optimizer_file = folder / name
    needed = [folder / TRAINABLE, optimizer_file, folder / SCHEDULER]
    missing = [p.name for p in needed if not p.is_file()]
    if missing:
        raise ResumeError(f"{folder}: incomplete state, no {', '.join(missing)}")
    trained = _read_tensors(folder / TRAINABLE)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if set(trained) != set(params):
        extra, absent = sorted(set(trained) - set(params)), sorted(set(params) - set(trained))
        raise ResumeError(f"{folder / TRAINABLE}: the trained parameters differ from this run's "
                          f"(not in this run: {', '.join(extra[:5]) or 'none'}; not in the checkpoint: "
                          f"{', '.join(absent[:5]) or 'none'})")
    with torch.no_grad():
        for name, param in params.items():
            if tuple(trained[name].shape) != tuple(param.shape):
                raise ResumeError(f"{folder / TRAINABLE}: {name} is {tuple(trained[name].shape)}, the run's "
                                  f"{tuple(param.shape)}")
            param.copy_(trained[name])
    state = load_torch(optimizer_file, ResumeError, "an optimizer state without unpickling objects",
                       allowed=_allowed_classes(per_process))
    if per_process:  # the ZeRO optimizer takes every process's list and picks its own entry
        state = [state if k == accelerator.process_index else None for k in range(accelerator.num_processes)]
    try:
        optimizer.load_state_dict(state)
    except Exception as exc:  # KeyError, ValueError or TypeError when the state belongs to another optimizer
        raise ResumeError(f"{optimizer_file}: not this run's optimizer state ({type(exc).__name__}: "
                          f"{str(exc)[:200]})") from exc
    scheduler.load_state_dict(read_json(folder / SCHEDULER, ResumeError, dict, "the run's scheduler state"))
    rank = accelerator.process_index
    rng_json, rng_tensors = folder / f"rng-{rank}.json", folder / f"rng-{rank}.safetensors"
    if not rng_json.is_file() or not rng_tensors.is_file():
        raise ResumeError(f"{folder}: no random state for process {rank} (written by a run of another size?)")
    meta = read_json(rng_json, ResumeError, dict, "the run's random state")
    tensors = _read_tensors(rng_tensors)
    try:
        _set_rng_state(meta, tensors)
    except (KeyError, TypeError, ValueError) as exc:
        raise ResumeError(f"{rng_json}: not a random state ({exc})") from exc
