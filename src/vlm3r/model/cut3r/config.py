"""CUT3R architecture configuration: the released cut3r_512_dpt_4_64 and smaller members of the same family."""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class Cut3rConfig:
    enc_embed_dim: int = 1024
    enc_depth: int = 24
    enc_num_heads: int = 16
    dec_embed_dim: int = 768
    dec_depth: int = 12
    dec_num_heads: int = 12
    state_dec_num_heads: int = 16
    state_size: int = 768
    local_mem_size: int = 256
    patch_size: int = 16
    mlp_ratio: float = 4.0
    rope_base: float = 100.0
    pose_head: bool = True
    rgb_head: bool = True
    # DPT head sizes (the released model: feature_dim 256, last_dim 128, layer_dims (96, 192, 384, 768)).
    dpt_feature_dim: int = 256
    dpt_last_dim: int = 128
    dpt_layer_dims: tuple[int, int, int, int] = field(default=(96, 192, 384, 768))

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
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in config.items() if k in known}
        if "pos_embed" in config:
            name = str(config["pos_embed"])
            if not name.startswith("RoPE"):
                raise ValueError(f"unsupported pos_embed {name!r}: CUT3R uses RoPE<base>")
            values["rope_base"] = float(name[4:] or 100)
        if config.get("head_type", "dpt") != "dpt":
            raise ValueError(f"unsupported head_type {config['head_type']!r}: only 'dpt'")
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
            raise ValueError(f"not a constructor expression: {text[:120]!r}") from exc
        call = tree.body
        while isinstance(call, ast.Call) and call.args and not call.keywords:
            call = call.args[0]
        if not isinstance(call, ast.Call):
            raise ValueError(f"expected ARCroco3DStereo(ARCroco3DStereoConfig(...)), got {text[:120]!r}")
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
