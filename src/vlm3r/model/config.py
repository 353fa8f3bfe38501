"""VLM-3R configuration: typed sub-configs for the vision tower, the LLM and CUT3R, the released 7B defaults
(docs/design.md, model §0, §4.1), a tiny member of the same family, and the two file forms of a config: our own
``to_dict``/``from_dict`` (the ``vlm3r`` section of config.json) and the LLaVA fields of a released config.json
(``from_released``/``released_fields``), which is how the official code reads every size."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field

from vlm3r.model.checks import ConfigError, check_divides, check_positive, known_fields
from vlm3r.model.cut3r import Cut3rConfig
from vlm3r.model.prompt import IGNORE_INDEX, IMAGE_TOKEN_INDEX, PromptTemplate
from vlm3r.utils.frames import CUT3R_IMAGE_SIZE, NUM_FRAMES, SIGLIP_IMAGE_SIZE

SELECT_FEATURES = {"patch_tokens": ("patch",), "camera_tokens": ("camera",), "all": ("camera", "patch"),
                   "all_tokens": ("camera", "patch"), "camera_tokens,patch_tokens": ("camera", "patch"),
                   "patch_tokens,camera_tokens": ("patch", "camera")}
POOL_MODES = ("bilinear", "average", "max")
SO400M_ID = "google/siglip-so400m-patch14-384"  # the vision tower of every released LLaVA-Video / VLM-3R
OFFICIAL_FUSION_HEADS = 18  # fixed in the official build_multimodal_fusion_block, whatever the width


@dataclass(frozen=True)
class VisionConfig:
    """The SigLIP tower as its own config.json describes it (``SiglipVisionConfig`` fields). The defaults are
    so400m-patch14-384, which is also what the official code assumes for any field its config omits.
    ``num_hidden_layers`` is the tower's depth; VLM-3R keeps all layers but the last."""

    hidden_size: int = 1152
    intermediate_size: int = 4304
    num_hidden_layers: int = 27
    num_attention_heads: int = 16
    num_channels: int = 3
    image_size: int = SIGLIP_IMAGE_SIZE
    patch_size: int = 14
    hidden_act: str = "gelu_pytorch_tanh"
    layer_norm_eps: float = 1e-6
    attention_dropout: float = 0.0

    def __post_init__(self):
        check_positive(self, ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                               "num_channels", "image_size", "patch_size"), "vision.")
        check_divides(self.num_attention_heads, self.hidden_size, "vision.num_attention_heads")
        if self.num_hidden_layers < 2:
            raise ConfigError("vision.num_hidden_layers: VLM-3R drops the last layer, so the tower needs 2 or more")
        if self.patch_size > self.image_size:
            raise ConfigError(f"vision.patch_size: {self.patch_size} is larger than image_size {self.image_size}")

    @property
    def kept_layers(self) -> int:
        """Layers VLM-3R runs: the output of the one before last is its feature (no post-layernorm)."""
        return self.num_hidden_layers - 1

    @classmethod
    def from_tower_config(cls, raw: dict, where: str) -> VisionConfig:
        """From a vision tower's config.json: a ``siglip`` model's ``vision_config`` or a vision model's own
        fields; omitted fields take the so400m values, as the official SigLipVisionConfig does."""
        if raw.get("model_type") == "siglip" or "vision_config" in raw:
            raw = raw.get("vision_config") or {}
        try:
            return cls(**known_fields(cls, raw))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from exc

    def tower_config(self) -> dict:
        """config.json of a standalone tower folder (what the official code builds SigLIP from)."""
        return {"model_type": "siglip_vision_model", "architectures": ["SiglipVisionModel"],
                **dataclasses.asdict(self)}


@dataclass(frozen=True)
class LlmConfig:
    """The Qwen2 LLM (``Qwen2Config`` fields); the defaults are Qwen2-7B as in LLaVA-Video-7B-Qwen2."""

    hidden_size: int = 3584
    intermediate_size: int = 18944
    num_hidden_layers: int = 28
    num_attention_heads: int = 28
    num_key_value_heads: int = 4
    vocab_size: int = 152064
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    max_position_embeddings: int = 32768
    hidden_act: str = "silu"
    tie_word_embeddings: bool = False
    bos_token_id: int = 151643
    eos_token_id: int = 151645

    REQUIRED: typing.ClassVar[tuple[str, ...]] = ("hidden_size", "intermediate_size", "num_hidden_layers",
                                                  "num_attention_heads", "vocab_size")

    def __post_init__(self):
        check_positive(self, self.REQUIRED + ("num_key_value_heads", "max_position_embeddings"), "llm.")
        check_divides(self.num_attention_heads, self.hidden_size, "llm.num_attention_heads")
        check_divides(self.num_key_value_heads, self.num_attention_heads, "llm.num_key_value_heads")

    @classmethod
    def from_released(cls, raw: dict, where: str) -> LlmConfig:
        """From the Qwen2 fields of a released config.json: the sizes must be there; the rest take Qwen2's
        defaults when absent (num_key_value_heads = num_attention_heads, as transformers)."""
        missing = [k for k in cls.REQUIRED if k not in raw]
        if missing:
            raise ConfigError(f"{where}: no {', '.join(missing)}: the LLM's sizes are read from config.json")
        if raw.get("rope_scaling"):
            raise ConfigError(f"{where}: rope_scaling {raw['rope_scaling']!r} is not supported (Qwen2-7B has none)")
        if raw.get("use_sliding_window"):
            raise ConfigError(f"{where}: use_sliding_window true is not supported (Qwen2-7B does not use it)")
        defaults = {"num_key_value_heads": raw["num_attention_heads"], "rope_theta": 10_000.0,
                    "tie_word_embeddings": False}
        values = {**defaults, **{k: v for k, v in known_fields(cls, raw).items() if v is not None}}
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from exc


@dataclass(frozen=True)
class Vlm3rConfig:
    vision: VisionConfig = field(default_factory=VisionConfig)
    llm: LlmConfig = field(default_factory=LlmConfig)
    cut3r: Cut3rConfig = field(default_factory=Cut3rConfig.full)
    fusion: bool = True  # False: no spatial tower or fusion at all (the LLaVA-Video baseline)
    fusion_heads: int = OFFICIAL_FUSION_HEADS
    fusion_dropout: float = 0.1  # on the residual sum, active in training (docs/design.md, model §8.6)
    spatial_tower_select_feature: str = "patch_tokens"  # the reference's default when the field is missing
    pool_mode: str = "bilinear"  # bilinear (released), average or max; stride 2
    num_frames: int = NUM_FRAMES
    cut3r_image_size: int = CUT3R_IMAGE_SIZE
    image_token_index: int = IMAGE_TOKEN_INDEX
    ignore_index: int = IGNORE_INDEX
    prompt: PromptTemplate = field(default_factory=PromptTemplate)  # the user turn it was trained with

    def __post_init__(self):
        for name, kind in (("vision", VisionConfig), ("llm", LlmConfig), ("cut3r", Cut3rConfig),
                           ("prompt", PromptTemplate)):
            if not isinstance(getattr(self, name), kind):
                raise ConfigError(f"{name}: expected a {kind.__name__}, got {type(getattr(self, name)).__name__} "
                                  "(use Vlm3rConfig.from_dict for plain dicts)")
        if self.spatial_tower_select_feature not in SELECT_FEATURES:
            raise ConfigError(f"spatial_tower_select_feature must be one of {sorted(SELECT_FEATURES)}, got "
                              f"{self.spatial_tower_select_feature!r}")
        if self.pool_mode not in POOL_MODES:
            raise ConfigError(f"pool_mode must be one of {', '.join(POOL_MODES)}, got {self.pool_mode!r}")
        check_positive(self, ("fusion_heads", "num_frames", "cut3r_image_size"), "")
        if self.fusion:
            check_divides(self.fusion_heads, self.vision.hidden_size, "fusion_heads (of vision.hidden_size)")
            check_divides(self.cut3r.patch_size, self.cut3r_image_size, "cut3r.patch_size (of cut3r_image_size)")
        if not 0.0 <= self.fusion_dropout < 1.0:
            raise ConfigError(f"fusion_dropout: expected a probability in [0, 1), got {self.fusion_dropout!r}")

    @property
    def vision_layers(self) -> int:
        return self.vision.kept_layers

    @property
    def selected_tokens(self) -> tuple[str, ...]:
        return SELECT_FEATURES[self.spatial_tower_select_feature]

    @property
    def grid(self) -> int:
        """SigLIP patch grid side (27 at 384 / 14)."""
        return self.vision.image_size // self.vision.patch_size

    @property
    def pooled_grid(self) -> int:
        return -(-self.grid // 2) if self.pool_mode == "bilinear" else self.grid // 2

    @property
    def tokens_per_frame(self) -> int:
        """Visual embeddings per frame after pooling, with one newline per row."""
        return self.pooled_grid * (self.pooled_grid + 1)

    # ------------------------------------------------------------------ our own form
    def to_dict(self) -> dict:
        """Plain JSON-ready values; ``from_dict`` is its inverse."""
        out = dataclasses.asdict(self)
        out["cut3r"]["dpt_layer_dims"] = list(out["cut3r"]["dpt_layer_dims"])
        return out

    @classmethod
    def from_dict(cls, values: dict, where: str = "config") -> Vlm3rConfig:
        """From ``to_dict`` output (the ``vlm3r`` section of config.json). Unknown fields are errors; the
        ``vision_layers`` field of earlier files is accepted when it agrees with the tower's depth."""
        values = dict(values)
        legacy_layers = values.pop("vision_layers", None)
        subs = {"vision": VisionConfig, "llm": LlmConfig, "cut3r": Cut3rConfig, "prompt": PromptTemplate}
        try:
            for name, kind in subs.items():
                if name in values:
                    values[name] = _typed(kind, values[name], f"{where}: {name}")
            config = _typed(cls, values, where)
        except ConfigError as exc:
            raise ConfigError(exc if str(exc).startswith(where) else f"{where}: {exc}") from exc
        if legacy_layers is not None and legacy_layers != config.vision_layers:
            raise ConfigError(f"{where}: vision_layers {legacy_layers} disagrees with vision.num_hidden_layers "
                              f"{config.vision.num_hidden_layers} (VLM-3R keeps all layers but the last)")
        return config

    # ------------------------------------------------------------------ the released form
    @staticmethod
    def declares_spatial_tower(raw: dict) -> bool:
        """Whether a released config.json has the spatial branch (``spatial_tower`` / ``mm_spatial_tower``)."""
        return bool(raw.get("spatial_tower") or raw.get("mm_spatial_tower"))

    @classmethod
    def from_released(cls, raw: dict, vision: VisionConfig, cut3r: Cut3rConfig | None, where: str,
                      **overrides) -> Vlm3rConfig:
        """From a released config.json (LLaVA + Qwen2 fields), the vision tower's own config and CUT3R's
        (from its ``.pth``), read as the official code reads them: fusion heads, CUT3R input size and frame
        count are the official fixed values. ``overrides`` replace fields (e.g. ``fusion=True`` when training
        starts from LLaVA-Video)."""
        declared = cls.declares_spatial_tower(raw)
        fusion = overrides.get("fusion", declared)
        _expect(raw, "mm_projector_type", "mlp2x_gelu", where)
        if raw.get("mm_hidden_size") not in (None, vision.hidden_size):
            raise ConfigError(f"{where}: mm_hidden_size {raw['mm_hidden_size']} but the vision tower is "
                              f"{vision.hidden_size} wide")
        if fusion and cut3r is None:
            raise ConfigError(f"{where}: a model with a spatial tower needs CUT3R's configuration")
        if declared:
            for name in ("spatial_tower", "mm_spatial_tower"):
                _expect(raw, name, "cut3r", where)
            _expect(raw, "fusion_block", "cross_attention", where)
            if fusion and raw.get("spatial_feature_dim") not in (None, cut3r.dec_embed_dim):
                raise ConfigError(f"{where}: spatial_feature_dim {raw['spatial_feature_dim']} but CUT3R's decoder "
                                  f"is {cut3r.dec_embed_dim} wide")
        select = raw.get("spatial_tower_select_feature") or "patch_tokens"
        values = dict(vision=vision, llm=LlmConfig.from_released(raw, where), fusion=fusion,
                      spatial_tower_select_feature=select, pool_mode=raw.get("mm_spatial_pool_mode", "bilinear"))
        if cut3r is not None:
            values["cut3r"] = cut3r
        try:
            return cls(**{**values, **overrides})
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from exc

    def released_fields(self, vision_tower: str) -> dict:
        """The LLaVA/Qwen2 fields of config.json that the official loader reads (docs/design.md, model §4.1);
        ``vision_tower`` is the ``mm_vision_tower`` entry (a hub id or a folder with the tower's config)."""
        fields_ = {
            "model_type": "llava_qwen", "architectures": ["LlavaQwenForCausalLM"], **dataclasses.asdict(self.llm),
            "mm_hidden_size": self.vision.hidden_size, "mm_projector_type": "mlp2x_gelu",
            "mm_vision_tower": vision_tower, "mm_spatial_pool_mode": self.pool_mode, "mm_spatial_pool_stride": 2,
            "mm_newline_position": "grid", "mm_patch_merge_type": "spatial_unpad", "mm_use_im_start_end": False,
            "mm_use_im_patch_token": False,
        }
        if self.fusion:
            fields_.update({"spatial_tower": "cut3r", "mm_spatial_tower": "cut3r",
                            "spatial_tower_select_feature": self.spatial_tower_select_feature,
                            "spatial_feature_dim": self.cut3r.dec_embed_dim, "fusion_block": "cross_attention"})
        return fields_

    # ------------------------------------------------------------------ presets
    @classmethod
    def full(cls, **overrides) -> Vlm3rConfig:
        """The released VLM-3R 7B: SigLIP-so400m (26 of 27 layers), CUT3R 512 DPT, Qwen2-7B."""
        return dataclasses.replace(cls(), **overrides)

    @classmethod
    def tiny(cls, vocab_size: int = 151_646, **overrides) -> Vlm3rConfig:
        """The same architecture in miniature (CPU-seconds), with the Qwen2 vocabulary so that real token ids fit."""
        vision = VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
                              image_size=84, patch_size=14)
        llm = LlmConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, vocab_size=vocab_size, max_position_embeddings=4096)
        cut3r = Cut3rConfig(enc_embed_dim=32, enc_depth=1, enc_num_heads=2, dec_embed_dim=16, dec_depth=4,
                            dec_num_heads=2, state_dec_num_heads=2, state_size=12, local_mem_size=4)
        base = cls(vision=vision, llm=llm, cut3r=cut3r, fusion_heads=2, num_frames=4, cut3r_image_size=96,
                   spatial_tower_select_feature="all")
        return dataclasses.replace(base, **overrides)


def _expect(raw: dict, name: str, value: str, where: str) -> None:
    if raw.get(name) not in (None, value):
        raise ConfigError(f"{where}: {name} {raw[name]!r} is not supported (only {value})")


def _typed(kind, values, where: str):
    """``kind(**values)`` with unknown fields named, lists turned into the tuples the fields declare."""
    if isinstance(values, kind):
        return values
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")
    hints = typing.get_type_hints(kind)
    converted = {}
    for name, value in values.items():
        if isinstance(value, list) and typing.get_origin(hints[name]) is tuple:
            value = tuple(value)
        converted[name] = value
    try:
        return kind(**converted)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
