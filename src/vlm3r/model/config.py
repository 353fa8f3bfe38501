"""VLM-3R configuration: full-size defaults from the released model (reference-model.md §0, §4.1) and a tiny one."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from vlm3r.model.cut3r import Cut3rConfig

SELECT_FEATURES = {"patch_tokens": ("patch",), "camera_tokens": ("camera",), "all": ("camera", "patch"),
                   "all_tokens": ("camera", "patch"), "camera_tokens,patch_tokens": ("camera", "patch"),
                   "patch_tokens,camera_tokens": ("patch", "camera")}


def _full_vision() -> dict:
    return dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                image_size=384, patch_size=14, layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh")


def _full_llm() -> dict:
    return dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                num_key_value_heads=4, vocab_size=152064, rope_theta=1_000_000.0, rms_norm_eps=1e-6,
                max_position_embeddings=32768, tie_word_embeddings=False, bos_token_id=151643, eos_token_id=151645)


@dataclass(frozen=True)
class Vlm3rConfig:
    vision: dict = field(default_factory=_full_vision)  # SiglipVisionConfig arguments
    vision_layers: int = 26  # SigLIP layers kept (the last one is dropped, no post-layernorm)
    llm: dict = field(default_factory=_full_llm)  # Qwen2Config arguments
    cut3r: Cut3rConfig = field(default_factory=Cut3rConfig.full)
    fusion: bool = True  # False: no spatial tower or fusion at all (the LLaVA-Video baseline)
    fusion_heads: int = 18
    fusion_dropout: float = 0.1  # on the residual sum, active in training (reference-model.md §8.6)
    spatial_tower_select_feature: str = "patch_tokens"  # the reference's default when the field is missing
    pool_mode: str = "bilinear"  # bilinear (released), average or max; stride 2
    num_frames: int = 32
    cut3r_image_size: int = 432
    image_token_index: int = -200
    ignore_index: int = -100

    def __post_init__(self):
        if self.spatial_tower_select_feature not in SELECT_FEATURES:
            raise ValueError(f"spatial_tower_select_feature must be one of {sorted(SELECT_FEATURES)}, got "
                             f"{self.spatial_tower_select_feature!r}")
        if self.pool_mode not in ("bilinear", "average", "max"):
            raise ValueError(f"pool_mode must be bilinear, average or max, got {self.pool_mode!r}")

    @property
    def selected_tokens(self) -> tuple[str, ...]:
        return SELECT_FEATURES[self.spatial_tower_select_feature]

    @property
    def grid(self) -> int:
        """SigLIP patch grid side (27 at 384 / 14)."""
        return self.vision["image_size"] // self.vision["patch_size"]

    @property
    def pooled_grid(self) -> int:
        return -(-self.grid // 2) if self.pool_mode == "bilinear" else self.grid // 2

    @property
    def tokens_per_frame(self) -> int:
        """Visual embeddings per frame after pooling, with one newline per row."""
        return self.pooled_grid * (self.pooled_grid + 1)

    @classmethod
    def full(cls, **overrides) -> Vlm3rConfig:
        """The released VLM-3R 7B: SigLIP-so400m (26 layers), CUT3R 512 DPT, Qwen2-7B."""
        return dataclasses.replace(cls(), **overrides)

    @classmethod
    def tiny(cls, vocab_size: int = 151_646, **overrides) -> Vlm3rConfig:
        """The same architecture in miniature (CPU-seconds), with the Qwen2 vocabulary so that real token ids fit."""
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2, image_size=84,
                      patch_size=14, layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh")
        llm = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, vocab_size=vocab_size, rope_theta=1_000_000.0, rms_norm_eps=1e-6,
                   max_position_embeddings=4096, tie_word_embeddings=False, bos_token_id=151643,
                   eos_token_id=151645)
        cut3r = Cut3rConfig(enc_embed_dim=32, enc_depth=1, enc_num_heads=2, dec_embed_dim=16, dec_depth=4,
                            dec_num_heads=2, state_dec_num_heads=2, state_size=12, local_mem_size=4)
        base = cls(vision=vision, vision_layers=2, llm=llm, cut3r=cut3r, fusion_heads=2, num_frames=4,
                   cut3r_image_size=96, spatial_tower_select_feature="all")
        return dataclasses.replace(base, **overrides)
