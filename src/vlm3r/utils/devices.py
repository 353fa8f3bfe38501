"""Where and in what precision models run: the one table of dtype names the commands and the lmms-eval model
accept, and a device check that says what is missing (a CUDA device on a CPU-only build of torch) instead
of failing deep inside the first tensor operation."""

from __future__ import annotations

from vlm3r.errors import InputError

DTYPE_NAMES = {"fp32": "float32", "float32": "float32", "bf16": "bfloat16", "bfloat16": "bfloat16",
               "fp16": "float16", "float16": "float16"}


def torch_dtype(name: str, option: str = "--dtype"):
    """The torch dtype of ``fp32`` / ``bf16`` / ``fp16`` (or their long names)."""
    import torch

    if name not in DTYPE_NAMES:
        raise InputError(f"{option} {name!r}: expected fp32, bf16 or fp16")
    return getattr(torch, DTYPE_NAMES[name])


def check_device(name: str, option: str = "--device") -> str:
    """``name`` if torch can run there now, else a ValueError saying why."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"{option} {name!r}: not a device name (cpu, cuda, cuda:1, mps)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise InputError(f"{option} {name}: CUDA is not available (torch {torch.__version__}, {build}, "
                         f"{'no GPU found' if torch.version.cuda else 'no CUDA support'}); use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(f"{option} {name}: only {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"{option} {name}: MPS is not available here; use --device cpu")
    return name
