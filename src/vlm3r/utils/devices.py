"""Where and in what precision models run: the one table of dtype names the commands and the lmms-eval model
accept, the ``auto`` choice (the best device present and the dtype that suits it), and a device check that says
what is missing (a CUDA device on a CPU-only build of torch) instead of failing deep inside the first tensor
operation."""

from __future__ import annotations

from dataclasses import dataclass

from vlm3r.errors import InputError

AUTO = "auto"  # --device / --dtype: chosen from what this machine has

DTYPE_NAMES = {"fp32": "float32", "float32": "float32", "bf16": "bfloat16", "bfloat16": "bfloat16",
               "fp16": "float16", "float16": "float16"}


def torch_dtype(name: str, option: str = "--dtype"):
    """The torch dtype of ``fp32`` / ``bf16`` / ``fp16`` (or their long names)."""
    import torch

    if name not in DTYPE_NAMES:
        raise InputError(f"{option} {name!r}: expected fp32, bf16 or fp16")
    return getattr(torch, DTYPE_NAMES[name])


SHORT_NAMES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def dtype_name(dtype) -> str:
    """The short name (fp32, bf16, fp16) of a torch dtype."""
    return SHORT_NAMES[str(dtype).removeprefix("torch.")]


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


def best_device() -> str:
    """The device ``--device auto`` picks: the first CUDA GPU, else Apple's MPS, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def best_dtype(device: str) -> str:
    """The dtype ``--dtype auto`` picks for ``device``: bf16 on a GPU that computes in it, fp16 on an older GPU (as
    the official evaluation runs), fp32 elsewhere (a CPU without bf16 units runs bf16 many times slower, and a
    model trained in fp32 on a CPU is then run as trained)."""
    import torch

    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


@dataclass(frozen=True)
class Placement:
    """The device and dtype a command runs in, and whether each was chosen by ``auto``."""

    device: str
    dtype: str
    auto_device: bool = False
    auto_dtype: bool = False

    def __str__(self) -> str:
        where = f"{self.device} (chosen: --device auto)" if self.auto_device else self.device
        precision = f"{self.dtype} (chosen: --dtype auto)" if self.auto_dtype else self.dtype
        return f"running on {where} in {precision}"


def placement(device: str, dtype: str, device_option: str = "--device", dtype_option: str = "--dtype") -> Placement:
    """``device`` and ``dtype`` as given, ``auto`` resolved (the dtype for the resolved device), both checked."""
    if dtype != AUTO and dtype not in DTYPE_NAMES:
        raise InputError(f"{dtype_option} {dtype!r}: expected auto, fp32, bf16 or fp16")
    chosen_device = best_device() if device == AUTO else check_device(device, device_option)
    chosen_dtype = best_dtype(chosen_device) if dtype == AUTO else dtype
    torch_dtype(chosen_dtype, dtype_option)
    return Placement(chosen_device, chosen_dtype, device == AUTO, dtype == AUTO)
