"""CUT3R as VLM-3R's spatial encoder: a recurrent 3D reconstruction model whose decoder tokens VLM-3R reads.

Per frame: the image encoder (ViT, RoPE) turns the frame into patch tokens; a pose token (learned for the
first frame, then proposed by the pose retriever) is put in front; 12 pairs of decoder blocks let a persistent
state of 768 tokens and the frame's tokens attend to each other; the normalised state is carried to the next
frame. VLM-3R takes the final normalised layer: the pose token as the camera token and the patch tokens as
geometry tokens. ``encode_video`` and ``step`` compute only that token path; ``reconstruct`` adds the heads.

Attribute names match the official state dict (see ``vlm3r.model.cut3r.loading``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from vlm3r.model.cut3r.blocks import LN_EPS, DecoderBlock, EncoderBlock
from vlm3r.model.cut3r.config import Cut3rConfig
from vlm3r.model.cut3r.heads import DownstreamHead, HeadOutputs
from vlm3r.model.cut3r.retriever import PoseRetriever


@dataclass
class Cut3rState:
    """The recurrent state of a batch of videos: one state and one pose memory per video."""

    state: torch.Tensor  # [B, state_size, dec_dim], normalised
    mem: torch.Tensor  # [B, local_mem_size, 2 * dec_dim]
    frames_seen: int = 0


@dataclass
class FrameTokens:
    """Everything one decoder pass produces for a frame."""

    camera: torch.Tensor  # [B, 1, D] final normalised pose token
    patch: torch.Tensor  # [B, N, D] final normalised image tokens
    layers: list[torch.Tensor]  # dec[0] (raw encoder tokens) and every decoder layer's image stream


class PatchEmbed(nn.Module):
    def __init__(self, dim: int, patch_size: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens [B, h*w, C] in row-major order and their (y, x) positions [B, h*w, 2]."""
        x = self.proj(images)
        b, _, h, w = x.shape
        pos = grid_positions(h, w, x.device).expand(b, -1, -1)
        return x.flatten(2).transpose(1, 2), pos


def grid_positions(h: int, w: int, device) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return torch.stack([ys.reshape(-1), xs.reshape(-1)], dim=-1)[None]


class Cut3r(nn.Module):
    def __init__(self, config: Cut3rConfig, with_heads: bool = True):
        super().__init__()
        c = self.config = config
        self.patch_embed = PatchEmbed(c.enc_embed_dim, c.patch_size)
        self.enc_blocks = nn.ModuleList([EncoderBlock(c.enc_embed_dim, c.enc_num_heads, c.mlp_ratio, c.rope_base,
                                                      fp16_qk=True) for _ in range(c.enc_depth)])
        self.enc_norm = nn.LayerNorm(c.enc_embed_dim, eps=LN_EPS)
        self.decoder_embed = nn.Linear(c.enc_embed_dim, c.dec_embed_dim)
        self.dec_blocks = nn.ModuleList([DecoderBlock(c.dec_embed_dim, c.dec_num_heads, c.mlp_ratio, c.rope_base)
                                         for _ in range(c.dec_depth)])
        self.dec_norm = nn.LayerNorm(c.dec_embed_dim, eps=LN_EPS)
        self.register_tokens = nn.Embedding(c.state_size, c.enc_embed_dim)
        self.decoder_embed_state = nn.Linear(c.enc_embed_dim, c.dec_embed_dim)
        self.dec_blocks_state = nn.ModuleList([
            DecoderBlock(c.dec_embed_dim, c.state_dec_num_heads, c.mlp_ratio, c.rope_base) for _ in range(c.dec_depth)])
        self.dec_norm_state = nn.LayerNorm(c.dec_embed_dim, eps=LN_EPS)
        self.pose_token = nn.Parameter(torch.zeros(1, 1, c.dec_embed_dim))
        self.pose_retriever = PoseRetriever(c.local_mem_size, c.enc_embed_dim, c.dec_embed_dim, c.dec_num_heads,
                                            c.mlp_ratio)
        self.downstream_head = DownstreamHead(c) if with_heads else None

    def state_positions(self, device) -> torch.Tensor:
        """(y, x) of the state tokens on a grid of width ``state_grid_width`` [1, S, 2]."""
        index = torch.arange(self.config.state_size, device=device)
        width = self.config.state_grid_width
        return torch.stack([index // width, index % width], dim=-1)[None]

    # ------------------------------------------------------------------ pieces
    def encode_images(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder tokens [B, N, enc_dim] (after enc_norm) and positions of frames [B, 3, H, W] in [-1, 1]."""
        if images.shape[-1] % self.config.patch_size or images.shape[-2] % self.config.patch_size:
            raise ValueError(f"frame size {tuple(images.shape[-2:])} must be a multiple of {self.config.patch_size}")
        x, pos = self.patch_embed(images)
        for block in self.enc_blocks:
            x = block(x, pos)
        return self.enc_norm(x), pos

    def init_state(self, batch: int = 1, device=None, dtype=None) -> Cut3rState:
        """The initial state, identical for every video: decoder_embed_state(register_tokens)."""
        weight = self.register_tokens.weight
        state = self.decoder_embed_state(weight)[None].expand(batch, -1, -1)
        mem = self.pose_retriever.initial_memory(batch)
        if device is not None or dtype is not None:
            state, mem = state.to(device=device, dtype=dtype), mem.to(device=device, dtype=dtype)
        return Cut3rState(state, mem, 0)

    def decode(self, tokens: torch.Tensor, pos: torch.Tensor, state: Cut3rState, update: torch.Tensor | None = None,
               reset: torch.Tensor | None = None) -> tuple[FrameTokens, Cut3rState]:
        """One recurrent step on already-encoded tokens: returns the frame's tokens and the next state.

        ``update`` / ``reset`` are optional per-video booleans [B], as in the official loop: a video whose update
        is False keeps its previous state and memory; a video with reset True goes back to the initial ones after
        this frame (its next frame still asks the pose retriever, as the official code does)."""
        b = tokens.shape[0]
        global_feature = tokens.mean(dim=1, keepdim=True)
        if state.frames_seen == 0:
            pose = self.pose_token.expand(b, -1, -1)
        else:
            pose = self.pose_retriever.inquire(global_feature, state.mem)
        image = torch.cat([pose, self.decoder_embed(tokens)], dim=1)
        image_pos = torch.cat([torch.full((b, 1, 2), -1, dtype=pos.dtype, device=pos.device), pos], dim=1)
        state_pos = self.state_positions(tokens.device).expand(b, -1, -1)
        layers = [tokens]
        current_state = state.state
        for depth, (block_state, block_image) in enumerate(zip(self.dec_blocks_state, self.dec_blocks)):
            # Both blocks of a pair read the previous pair's outputs.
            new_state = block_state(current_state, image, state_pos, image_pos)
            image = block_image(image, current_state, image_pos, state_pos)
            current_state = new_state
            if depth == len(self.dec_blocks) - 1:
                current_state, image = self.dec_norm_state(current_state), self.dec_norm(image)
            layers.append(image)
        camera = image[:, :1]
        mem = self.pose_retriever.update(state.mem, global_feature, camera)
        if update is not None:
            keep = update.to(device=tokens.device, dtype=current_state.dtype)[:, None, None]
            current_state = current_state * keep + state.state * (1 - keep)
            mem = mem * keep + state.mem * (1 - keep)
        if reset is not None:
            initial = self.init_state(b, tokens.device, current_state.dtype)
            back = reset.to(device=tokens.device, dtype=current_state.dtype)[:, None, None]
            current_state = initial.state * back + current_state * (1 - back)
            mem = initial.mem * back + mem * (1 - back)
        return FrameTokens(camera, image[:, 1:], layers), Cut3rState(current_state, mem, state.frames_seen + 1)

    # ------------------------------------------------------------------ public API
    @torch.inference_mode()
    def step(self, frame: torch.Tensor, state: Cut3rState, update: torch.Tensor | None = None,
             reset: torch.Tensor | None = None) -> tuple[Cut3rState, torch.Tensor, torch.Tensor]:
        """Streaming: one frame [B, 3, H, W] (one per video) -> (next state, camera [B,1,D], patch [B,N,D]).
        ``update`` / ``reset``: optional per-video masks (see ``decode``)."""
        tokens, pos = self.encode_images(frame)
        out, state = self.decode(tokens, pos, state, update, reset)
        return state, out.camera, out.patch

    def encode_video(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Camera tokens [F, 1, D] and geometry tokens [F, N, D] of a video [F, 3, H, W] in [-1, 1];
        a batch of videos [B, F, 3, H, W] gives [B, F, ...], each video with its own state.

        Differentiable: gradients reach the parameters that require them (an unfrozen spatial tower in
        training); a frozen CUT3R records no graph. Wrap calls in ``torch.inference_mode()`` for inference."""
        batched = frames.ndim == 5
        videos = frames if batched else frames[None]
        b, f = videos.shape[:2]
        tokens, pos = self.encode_images(videos.flatten(0, 1))
        tokens, pos = tokens.unflatten(0, (b, f)), pos.unflatten(0, (b, f))
        state = self.init_state(b, tokens.device, tokens.dtype)
        cameras, patches = [], []
        for i in range(f):
            out, state = self.decode(tokens[:, i], pos[:, i], state)
            cameras.append(out.camera)
            patches.append(out.patch)
        camera, patch = torch.stack(cameras, 1), torch.stack(patches, 1)
        return (camera, patch) if batched else (camera[0], patch[0])

    @torch.inference_mode()
    def reconstruct(self, frames: torch.Tensor, on_frame: Callable[[int], None] | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, list[HeadOutputs]]:
        """``encode_video`` plus the heads per frame: points in the frame's own camera and in the first camera's
        world, confidences, colours and camera-to-world poses. Frames [F, 3, H, W] of one video. ``on_frame(i)``
        is called after frame ``i`` (counted from 1) is done, for progress bars; all frames are encoded first,
        in one batch, as the official code does."""
        if self.downstream_head is None:
            raise RuntimeError("this CUT3R was built without heads (with_heads=False)")
        tokens, pos = self.encode_images(frames)
        state = self.init_state(1, tokens.device, tokens.dtype)
        cameras, patches, heads = [], [], []
        height, width = frames.shape[-2:]
        for i in range(frames.shape[0]):
            out, state = self.decode(tokens[i:i + 1], pos[i:i + 1], state)
            cameras.append(out.camera[0])
            patches.append(out.patch[0])
            heads.append(self.downstream_head(out.layers, pos[i:i + 1], (height, width)))
            if on_frame is not None:
                on_frame(i + 1)
        return torch.stack(cameras), torch.stack(patches), heads
