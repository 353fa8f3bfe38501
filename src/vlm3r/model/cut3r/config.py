"""CUT3R architecture configuration: the released cut3r_512_dpt_4_64 and smaller members of the same family."""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field

from vlm3r.model.checks import ConfigError, check_divides, check_positive, known_fields

ROPE_CHANNEL_GROUP = 4  # 2D RoPE turns each head's channels in quarters (y then x, pairs i and i + D/4)


@dataclass(frozen=True)
class Cut3rConfig:
    """CUT3R's sizes (the official ``ARCroco3DStereoConfig`` fields that shape the weights); the defaults are the
    released cut3r_512_dpt_4_64."""

    enc_embed_dim: int = 1024  # the image encoder (ViT-L): width, blocks, heads
    enc_depth: int = 24
    enc_num_heads: int = 16
    dec_embed_dim: int = 768  # the two decoders (image and state) share width and depth
    dec_depth: int = 12
    dec_num_heads: int = 12
    state_dec_num_heads: int = 16
    state_size: int = 768  # persistent state tokens
    local_mem_size: int = 256  # slots of the pose retriever's memory
    patch_size: int = 16  # px
    mlp_ratio: float = 4.0
    rope_base: float = 100.0
    pose_head: bool = True
    rgb_head: bool = True
    # DPT head sizes (the released model: feature_dim 256, last_dim 128, layer_dims (96, 192, 384, 768)).
    dpt_feature_dim: int = 256
    dpt_last_dim: int = 128
    dpt_layer_dims: tuple[int, int, int, int] = field(default=(96, 192, 384, 768))

    def __post_init__(self):
        check_positive(self, ("enc_embed_dim", "enc_depth", "enc_num_heads", "dec_embed_dim", "dec_depth",
                              "dec_num_heads", "state_dec_num_heads", "state_size", "local_mem_size", "patch_size",
                              "dpt_feature_dim", "dpt_last_dim"), "cut3r.")
        for width, heads in (("enc_embed_dim", "enc_num_heads"), ("dec_embed_dim", "dec_num_heads"),
                             ("dec_embed_dim", "state_dec_num_heads")):
            check_divides(getattr(self, heads), getattr(self, width), f"cut3r.{heads} (of {width})")
            head_dim = getattr(self, width) // getattr(self, heads)
            if head_dim % ROPE_CHANNEL_GROUP:
                raise ConfigError(f"cut3r.{heads}: heads of {head_dim} channels; 2D RoPE needs a multiple of "
                                  f"{ROPE_CHANNEL_GROUP}")
        if len(self.dpt_layer_dims) != 4 or not all(isinstance(d, int) and d > 0 for d in self.dpt_layer_dims):
            raise ConfigError(f"cut3r.dpt_layer_dims: expected 4 positive integers, got {self.dpt_layer_dims!r}")

    @property
    def state_grid_width(self) -> int:
        """Width of the state tokens' 2D position grid: int(sqrt(state_size)), made even."""
        width = int(math.sqrt(self.state_size))
        return width + 1 if width % 2 else width

    @property
    def hooks(self) -> tuple[int, int, int, int]:
        """Decoder outputs the DPT heads read: the encoder output and layers depth/2, 3*depth/4, depth."""
        return 0, self.dec_depth * 2 // 4, self.dec_depth * 3 // 4, self.dec_depth

    @classmethod
    def full(cls) -> Cut3rConfig:
        """cut3r_512_dpt_4_64, the checkpoint VLM-3R uses."""
        return cls()

    @classmethod
    def from_dict(cls, config: dict, dpt_override: dict | None = None) -> Cut3rConfig:
        """From the keys of the official constructor (as in the reference vectors' manifest) and an optional DPT
        size override (feature_dim, last_dim, layer_dims); keys that do not change the architecture are ignored."""
        values = known_fields(cls, config)
        if "pos_embed" in config:
            name = str(config["pos_embed"])
            if not name.startswith("RoPE"):
                raise ConfigError(f"pos_embed: {name!r} is not supported (CUT3R uses RoPE<base>)")
            values["rope_base"] = float(name[4:] or 100)
        if config.get("head_type", "dpt") != "dpt":
            raise ConfigError(f"head_type: {config['head_type']!r} is not supported (only 'dpt')")
        if dpt_override:
            values["dpt_feature_dim"] = int(dpt_override["feature_dim"])
            values["dpt_last_dim"] = int(dpt_override["last_dim"])
            values["dpt_layer_dims"] = tuple(int(v) for v in dpt_override["layer_dims"])
        return cls(**values)  # otherwise the official fixed DPT sizes (256, 128, (96, 192, 384, 768))

    def constructor_string(self) -> str:
        """``args.model`` as the official checkpoints carry it, for ``.pth`` files vlm3r writes; the DPT sizes
        are the official fixed ones, so a checkpoint with other sizes also needs its config when loaded."""
        keys = ("state_size", "enc_embed_dim", "enc_depth", "enc_num_heads", "dec_embed_dim", "dec_depth",
                "dec_num_heads", "state_dec_num_heads", "local_mem_size", "patch_size", "mlp_ratio", "pose_head",
                "rgb_head")
        values = ", ".join(f"{k}={getattr(self, k)!r}" for k in keys)
        return (f"ARCroco3DStereo(ARCroco3DStereoConfig({values}, pos_embed='RoPE{self.rope_base:g}', "
                "head_type='dpt', state_pe='2d'))")

    @classmethod
    def from_constructor_string(cls, text: str) -> Cut3rConfig:
        """Parse (never evaluate) a checkpoint's ``args.model`` string such as
        ``ARCroco3DStereo(ARCroco3DStereoConfig(state_size=768, ..., pos_embed='RoPE100', ...))``."""
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ConfigError(f"not a constructor expression: {text[:120]!r}") from exc
        call = tree.body
        while isinstance(call, ast.Call) and call.args and not call.keywords:
            call = call.args[0]
        if not isinstance(call, ast.Call):
            raise ConfigError(f"expected ARCroco3DStereo(ARCroco3DStereoConfig(...)), got {text[:120]!r}")
        return cls.from_dict({kw.arg: _literal(kw.value) for kw in call.keywords if kw.arg})


def _literal(node: ast.AST):
    """A literal value, allowing the names inf / -inf that the official strings contain."""
    if isinstance(node, ast.Name) and node.id == "inf":
        return math.inf
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_literal(node.operand)
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e) for e in node.elts)
    if isinstance(node, ast.List):
        return [_literal(e) for e in node.elts]
    return ast.literal_eval(node)
