"""VLM-3R: SigLIP + CUT3R -> cross-attention fusion -> projector -> 2x2 bilinear pooling + row newlines -> Qwen2.

Order of operations as the released model (docs/design.md, model §1): SigLIP (26 layers, no post-layernorm) on the
[-1, 1] frames; CUT3R on the same pixels resized to 432 (one recurrent state per video); each frame's SigLIP
tokens attend to its CUT3R tokens; the mlp2x_gelu projector; bilinear pooling 27 -> 14 per side; a learned
newline embedding after every pooled row; the embeddings are spliced into the ChatML prompt at ``<image>``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import DynamicCache, Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig, SiglipVisionModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from vlm3r.model import loading, saving
from vlm3r.model.checkpoint import check_weights
from vlm3r.model.config import Vlm3rConfig
from vlm3r.model.cut3r import Cut3r
from vlm3r.model.fusion import CrossAttentionFusion, mlp2x_gelu
from vlm3r.model.keys import strip_peft
from vlm3r.model.prompt import MAX_NEW_TOKENS
from vlm3r.model.sampling import Sampling, TokenChooser
from vlm3r.model.video import cut3r_pixels

log = logging.getLogger(__name__)


def _frozen(module: nn.Module) -> bool:
    return not any(p.requires_grad for p in module.parameters())


class Vlm3rModel(nn.Module):
    def __init__(self, config: Vlm3rConfig):
        super().__init__()
        if not isinstance(config, Vlm3rConfig):
            raise TypeError(f"config must be a Vlm3rConfig, got {type(config).__name__} (Vlm3rConfig.from_dict reads "
                            "a dict)")
        self.config = config
        vision_config = SiglipVisionConfig(**dataclasses.asdict(config.vision))
        vision_config._attn_implementation = "eager"  # the released tower: eager attention, fp32 softmax
        self.vision_tower = SiglipVisionModel(vision_config)
        self.vision_tower.encoder.layers = self.vision_tower.encoder.layers[:config.vision_layers]
        # Unused by VLM-3R (features are taken before them): no weights, no compute.
        self.vision_tower.post_layernorm = nn.Identity()
        self.vision_tower.head = nn.Identity()
        d_clip, d_llm = config.vision.hidden_size, config.llm.hidden_size
        if config.fusion:
            self.spatial_tower = Cut3r(config.cut3r, with_heads=False)
            self.fusion_block = CrossAttentionFusion(d_clip, config.cut3r.dec_embed_dim, config.fusion_heads,
                                                    config.fusion_dropout)
        else:
            self.spatial_tower = self.fusion_block = None
        self.mm_projector = mlp2x_gelu(d_clip, d_llm)
        self.image_newline = nn.Parameter(torch.zeros(d_llm))
        self.llm = Qwen2ForCausalLM(Qwen2Config(**dataclasses.asdict(config.llm)))
        self.name_or_path: str | None = None  # set by from_pretrained: the folder read
        self.files: loading.ReleaseFiles | None = None  # and where its base, CUT3R and config came from

    # ------------------------------------------------------------------ files
    @classmethod
    def from_pretrained(cls, path: Path | str, cut3r: Path | str | None = None, base: Path | str | None = None,
                        dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                        vision_tower: Path | str | None = None, new_modules: tuple[str, ...] = (),
                        **config_overrides) -> Vlm3rModel:
        """The model of a folder in the released layouts (see ``vlm3r.model.loading``), every size read from the
        files, in eval mode with SigLIP and CUT3R frozen.

        Args:
            path: the VLM-3R folder (config.json, adapter, non_lora_trainables.bin), or a full/base checkpoint.
            cut3r, base: the CUT3R ``.pth`` and the LLaVA-Video base folder (a folder written by vlm3r names its
                own in config.json).
            dtype, device: what the model runs in; weights are cast once, after the LoRA merge.
            vision_tower: a folder with the SigLIP tower's config.json, in place of ``mm_vision_tower``.
            new_modules: modules that may be absent from the files and are then initialised anew (training
                starts from LLaVA-Video with a new ``fusion_block``).
            config_overrides: Vlm3rConfig fields to change (``fusion``, ``spatial_tower_select_feature``, ...).
        """
        files = loading.release_files(path, base, cut3r)
        config, state = loading.read_release(files, vision_tower, dtype, **config_overrides)
        source = f"{files.model}" + (f" (base {files.base})" if files.base != files.model else "")
        model = cls.from_state(config, state, source, dtype, new_modules)
        model.vision_tower.requires_grad_(False)
        if model.spatial_tower is not None:
            model.spatial_tower.requires_grad_(False)
        model.name_or_path, model.files = str(files.model), files
        return model.to(device).eval()

    @classmethod
    def from_state(cls, config: Vlm3rConfig, state: dict[str, torch.Tensor], source: str,
                   dtype: torch.dtype = torch.float32, new_modules: tuple[str, ...] = ()) -> Vlm3rModel:
        """The model with every weight taken from ``state`` (our names), checked key by key, built on the meta
        device so that the weights are held once (``state``'s tensors are cast in place, one at a time). Modules
        in ``new_modules`` absent from ``state`` get their own initialisation."""
        with torch.device("meta"):
            model = cls(config)
        check_weights({k: tuple(v.shape) for k, v in model.state_dict().items()}, state, source,
                      loading.Vlm3rCheckpointError, optional=tuple(f"{m}." for m in new_modules))
        for name, value in state.items():
            if value.is_floating_point():
                state[name] = value.to(dtype)
        model.load_state_dict(state, strict=False, assign=True)
        for name in new_modules:
            module = getattr(model, name, None)
            if module is not None and any(p.is_meta for p in module.parameters()):
                log.info("%s: %s is not in the checkpoint; initialised anew", source, name)
                module.to_empty(device="cpu").reset_parameters()
                module.to(dtype)
        model._rebuild_buffers()
        return model

    def _rebuild_buffers(self) -> None:
        """Non-persistent buffers stay on the meta device after loading: compute them again."""
        embeddings = self.vision_tower.embeddings
        embeddings.register_buffer("position_ids", torch.arange(embeddings.num_positions)[None], persistent=False)
        rotary = self.llm.model.rotary_emb
        self.llm.model.rotary_emb = type(rotary)(config=self.llm.config)
        for name, buffer in self.named_buffers():
            if buffer.is_meta:
                raise RuntimeError(f"buffer {name} was not rebuilt after loading")

    def save_pretrained(self, folder: Path | str, tokenizer=None, base_only: bool = False, **config_extra) -> Path:
        """Write the model in a released layout that ``from_pretrained`` (and the official loader) reads: with a
        peft-wrapped LLM the fine-tuning layout (adapter + non_lora_trainables.bin; ``config_extra`` should name
        ``model_base`` and ``cut3r_weights``), otherwise one folder with every weight (``base_only``: a
        LLaVA-Video-style base without fusion block and CUT3R)."""
        state = saving.plain_state(self.state_dict())
        if hasattr(self.llm, "peft_config"):
            trained = {strip_peft(k): p for k, p in self.named_parameters()
                       if p.requires_grad and "lora_" not in k}
            return saving.write_finetuned(folder, self.llm, self.config, trained, state, **config_extra)
        return saving.write_full(folder, self.config, state, tokenizer, base_only, **config_extra)

    def fit_tokenizer(self, tokenizer) -> None:
        """Cut the embeddings and lm_head to the tokenizer's length, as the official inference loader does
        (151646 of 152064 rows for LLaVA-Video; the rows cut are never produced by the tokenizer)."""
        rows = len(tokenizer)
        if rows < self.llm.get_input_embeddings().num_embeddings:
            self.llm.resize_token_embeddings(rows)
            self.config = dataclasses.replace(self.config, llm=dataclasses.replace(self.config.llm, vocab_size=rows))

    # ------------------------------------------------------------------ visual path
    def vision_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Output of the last kept SigLIP layer, before post_layernorm: [F, grid^2, d_clip]."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not _frozen(self.vision_tower)):
            out = self.vision_tower(pixel_values=pixel_values.to(self.vision_tower.dtype), output_hidden_states=True)
        return out.hidden_states[-1]

    def spatial_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """CUT3R tokens of one video's frames, as selected by ``spatial_tower_select_feature``: [F, M, d_spatial]."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not _frozen(self.spatial_tower)):
            camera, patch = self.spatial_tower.encode_video(
                cut3r_pixels(pixel_values, self.config.cut3r_image_size).to(self.spatial_tower.pose_token.dtype))
        return self.select_spatial(camera, patch)

    def select_spatial(self, camera: torch.Tensor, patch: torch.Tensor) -> torch.Tensor:
        """The K/V tokens fusion attends to, from CUT3R's camera [F, 1, D] and patch [F, N, D] tokens."""
        parts = {"camera": camera, "patch": patch}
        return torch.cat([parts[name] for name in self.config.selected_tokens], dim=1)

    def fuse(self, visual: torch.Tensor, spatial: torch.Tensor | None) -> torch.Tensor:
        if self.fusion_block is None or spatial is None:
            return visual
        return self.fusion_block(visual, spatial.to(visual.dtype))

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """[F, g*g, D] -> [F, h, h, D] with h = ceil(g/2) (bilinear) or g // 2 (average, max)."""
        frames, tokens, dim = x.shape
        g = self.config.grid
        grid = x.view(frames, g, g, dim).permute(0, 3, 1, 2)
        h = self.config.pooled_grid
        if self.config.pool_mode == "bilinear":
            grid = F.interpolate(grid, size=(h, h), mode="bilinear", align_corners=False)
        elif self.config.pool_mode == "average":
            grid = F.avg_pool2d(grid, 2)
        else:
            grid = F.max_pool2d(grid, 2)
        return grid.permute(0, 2, 3, 1)

    def add_newlines(self, grid: torch.Tensor) -> torch.Tensor:
        """[F, h, w, D] -> [F * h * (w + 1), D]: the newline embedding after every row, frame after frame."""
        frames, h, _, dim = grid.shape
        newline = self.image_newline.to(grid.dtype).view(1, 1, 1, dim).expand(frames, h, 1, dim)
        return torch.cat([grid, newline], dim=2).reshape(-1, dim)

    def visual_embeddings(self, pixel_values: torch.Tensor, spatial: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings of one video (frames [F, 3, S, S] in [-1, 1]) as spliced into the prompt: [F*h*(h+1), D].

        ``spatial`` may carry precomputed CUT3R tokens, as selected [F, M, D] or as the feature files'
        ``{"camera_tokens", "patch_tokens"}``; otherwise CUT3R runs here."""
        size = self.config.vision.image_size
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != (self.config.vision.num_channels, size, size):
            raise ValueError(f"pixel_values: expected frames [F, {self.config.vision.num_channels}, {size}, {size}] "
                             f"(SigLIP preprocessing at the tower's image_size), got {tuple(pixel_values.shape)}")
        visual = self.vision_features(pixel_values)
        if isinstance(spatial, dict):
            spatial = self.select_spatial(spatial["camera_tokens"], spatial["patch_tokens"])
        if self.fusion_block is not None and spatial is None:
            spatial = self.spatial_features(pixel_values)
        fused = self.fuse(visual, spatial)
        return self.add_newlines(self.pool(self.mm_projector(fused)))

    def image_embeddings(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """Embeddings of an image sequence (images [N, 3, S, S] in [-1, 1]) as the reference splices images: SigLIP
        on each, CUT3R over all N as one recurrent sequence (in this order), fusion and projector per image, then no
        pooling: each image's grid of g x g tokens with the newline embedding after every row, one [g * (g + 1), D]
        tensor per image (756 rows with the released config), each for its own ``<image>`` (docs/model.md, "Image
        sequences")."""
        size = self.config.vision.image_size
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != (self.config.vision.num_channels, size, size):
            raise ValueError(f"pixel_values: expected images [N, {self.config.vision.num_channels}, {size}, {size}] "
                             f"(SigLIP preprocessing at the tower's image_size), got {tuple(pixel_values.shape)}")
        visual = self.vision_features(pixel_values)
        spatial = self.spatial_features(pixel_values) if self.fusion_block is not None else None
        projected = self.mm_projector(self.fuse(visual, spatial))
        g = self.config.grid
        rows = self.add_newlines(projected.view(len(projected), g, g, projected.shape[-1]))
        return list(rows.view(len(projected), g * (g + 1), -1).unbind(0))

    # ------------------------------------------------------------------ text
    def splice(self, input_ids: list[list[int]], visuals: list[torch.Tensor], labels: list[list[int]] | None = None,
               padding_side: str = "left"):
        """Embed each sample's ids, put the i-th visual sequence at the i-th ``image_token_index``, pad.

        Returns (inputs_embeds [B, L, D], attention_mask [B, L], labels [B, L] or None, position_ids [B, L]).
        Visual positions get the ignore index as label. Position ids count only real tokens, so left-padded
        samples in a batch see the same positions as alone."""
        embed = self.llm.get_input_embeddings()
        sentinel, ignore = self.config.image_token_index, self.config.ignore_index
        slots = sum(ids.count(sentinel) for ids in input_ids)
        if slots != len(visuals):
            raise ValueError(f"{slots} image token(s) ({sentinel}, from <image>) in {len(input_ids)} prompt(s) but "
                             f"{len(visuals)} visual sequence(s): each video needs exactly one <image> in its prompt")
        visual_iter = iter(visuals)
        rows, row_labels = [], []
        for k, ids in enumerate(input_ids):
            sample_labels = labels[k] if labels is not None else [ignore] * len(ids)
            pieces, piece_labels, start = [], [], 0
            for i, token in enumerate(ids + [sentinel]):
                if token != sentinel:
                    continue
                text = torch.tensor(ids[start:i], dtype=torch.long, device=embed.weight.device)
                pieces.append(embed(text))
                piece_labels += sample_labels[start:i]
                if i < len(ids):
                    visual = next(visual_iter).to(embed.weight.dtype)
                    pieces.append(visual)
                    piece_labels += [ignore] * len(visual)
                start = i + 1
            rows.append(torch.cat(pieces))
            row_labels.append(piece_labels)
        length = max(len(r) for r in rows)
        dim = rows[0].shape[-1]
        device = rows[0].device
        embeds = torch.zeros(len(rows), length, dim, dtype=rows[0].dtype, device=device)
        mask = torch.zeros(len(rows), length, dtype=torch.long, device=device)
        out_labels = torch.full((len(rows), length), ignore, dtype=torch.long, device=device)
        positions = torch.zeros(len(rows), length, dtype=torch.long, device=device)
        for k, (row, lab) in enumerate(zip(rows, row_labels)):
            n = len(row)
            span = slice(length - n, length) if padding_side == "left" else slice(0, n)
            embeds[k, span], mask[k, span] = row, 1
            out_labels[k, span] = torch.tensor(lab, dtype=torch.long, device=device)
            positions[k, span] = torch.arange(n, device=device)
        return embeds, mask, (out_labels if labels is not None else None), positions

    def forward(self, input_ids: list[list[int]], visuals: list[torch.Tensor] | None = None, labels=None,
                pixel_values: list[torch.Tensor] | None = None, spatial_features: list | None = None,
                max_length: int | None = None) -> CausalLMOutputWithPast:
        """The logits of a batch of prompts, or with ``labels`` the loss alone.

        Each sample's visual embeddings come from ``visuals`` or are computed here from its video's
        ``pixel_values`` (with precomputed CUT3R tokens from ``spatial_features`` where given, the training
        path). ``max_length`` truncates the spliced sequences, as the reference does after splicing. The loss is
        the reference's (Qwen2's shifted cross-entropy, the mean over the positions whose next token has a
        label), computed from the output head at those positions only: a training sample's thousands of video and
        prompt positions never make vocabulary-wide logits (8k positions x 152k words is 5 GB in fp32)."""
        if visuals is None:
            spatial_features = spatial_features or [None] * len(pixel_values or [])
            visuals = [self.visual_embeddings(px, sp) for px, sp in zip(pixel_values or [], spatial_features)]
        embeds, mask, labels, positions = self.splice(input_ids, visuals, labels, padding_side="right")
        if max_length is not None:
            embeds, mask, positions = embeds[:, :max_length], mask[:, :max_length], positions[:, :max_length]
            labels = labels[:, :max_length] if labels is not None else None
        if labels is None:
            return self.llm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions)
        causal_lm = self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm  # inside peft
        hidden = causal_lm.model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions).last_hidden_state
        targets = labels[:, 1:]
        learned = targets != self.config.ignore_index
        logits = causal_lm.lm_head(hidden[:, :-1][learned])
        return CausalLMOutputWithPast(loss=F.cross_entropy(logits.float(), targets[learned]))

    @torch.inference_mode()
    def generate(self, input_ids: list[list[int]], visuals: list[torch.Tensor], max_new_tokens: int = MAX_NEW_TOKENS,
                 eos_token_id: int | None = None, pad_token_id: int | None = None) -> list[list[int]]:
        """Greedy decoding (the benchmarks' settings: no sampling, one beam) for a batch of prompts; the end and
        padding ids as ``_stop_ids`` reads them."""
        embeds, mask, _, positions = self.splice(input_ids, visuals, padding_side="left")
        return self._decode(embeds, mask, positions, None, max_new_tokens, *self._stop_ids(eos_token_id, pad_token_id))

    def _stop_ids(self, eos_token_id: int | None, pad_token_id: int | None) -> tuple[int, int]:
        """The ids that end an answer and pad a finished one: the caller's (the pipeline passes its tokenizer's,
        ``model.prompt.eos_id``/``pad_id``), else the LLM config's ``eos_token_id`` for both (as transformers pads
        with the end id when none is given; the padding of a finished row never changes an answer)."""
        eos = self.config.llm.eos_token_id if eos_token_id is None else eos_token_id
        return eos, eos if pad_token_id is None else pad_token_id

    @torch.inference_mode()
    def prefill(self, prefix_ids: list[int], visual: torch.Tensor) -> PrefixCache:
        """Run a prompt's shared prefix once: ``prefix_ids`` (the prompt up to ``<image>``: system turn and user
        header) then the video's embeddings. Every question about the video continues from it
        (``generate_from_prefix``); causal attention makes that equal to prefilling each whole prompt."""
        if self.config.image_token_index in prefix_ids:
            raise ValueError("prefix_ids: the prefix ends at <image>; it cannot contain one")
        embed = self.llm.get_input_embeddings()
        text = embed(torch.tensor(prefix_ids, dtype=torch.long, device=embed.weight.device))
        embeds = torch.cat([text, visual.to(device=text.device, dtype=text.dtype)])[None]
        length = embeds.shape[1]
        positions = torch.arange(length, device=embeds.device)[None]
        out = self.llm.model(inputs_embeds=embeds, attention_mask=torch.ones_like(positions), position_ids=positions,
                             use_cache=True)
        return PrefixCache(out.past_key_values, length)

    @torch.inference_mode()
    def generate_from_prefix(self, prefix: PrefixCache, suffixes: list[list[int]], max_new_tokens: int = MAX_NEW_TOKENS,
                             eos_token_id: int | None = None, pad_token_id: int | None = None,
                             samplings: list[Sampling | None] | None = None) -> list[list[int]]:
        """Answers for a batch of prompt ends (each the ids after ``<image>``), continuing ``prefix``: greedy, or
        each question sampled as its ``samplings`` entry says (``model.sampling``; None: greedy). Shorter suffixes
        are padded between the prefix and their tokens, masked out; positions count only real tokens, so each
        answer equals the one its whole prompt gets alone."""
        if not suffixes or any(not s for s in suffixes):
            raise ValueError("suffixes: one non-empty list of ids per question")
        if any(self.config.image_token_index in s for s in suffixes):
            raise ValueError("suffixes: a question's text after <image> cannot contain another <image>")
        eos_token_id, pad_token_id = self._stop_ids(eos_token_id, pad_token_id)
        batch, longest = len(suffixes), max(len(s) for s in suffixes)
        embed = self.llm.get_input_embeddings()
        device = embed.weight.device
        ids = torch.full((batch, longest), pad_token_id, dtype=torch.long, device=device)
        mask = torch.zeros(batch, prefix.length + longest, dtype=torch.long, device=device)
        mask[:, :prefix.length] = 1
        positions = torch.full((batch, longest), prefix.length, dtype=torch.long, device=device)
        for k, suffix in enumerate(suffixes):
            start = longest - len(suffix)
            ids[k, start:] = torch.tensor(suffix, dtype=torch.long, device=device)
            mask[k, prefix.length + start:] = 1
            positions[k, start:] = prefix.length + torch.arange(len(suffix), device=device)
        return self._decode(embed(ids), mask, positions, prefix.expanded(batch), max_new_tokens, eos_token_id,
                            pad_token_id, samplings)

    @torch.inference_mode()
    def stream_from_prefix(self, prefix: PrefixCache, suffix: list[int], max_new_tokens: int = MAX_NEW_TOKENS,
                           eos_token_id: int | None = None, pad_token_id: int | None = None,
                           sampling: Sampling | None = None):
        """``generate_from_prefix`` for one question, yielding each new token id as it is chosen (the end of turn
        is not yielded); the same tokens as ``generate_from_prefix`` with the same ``sampling``."""
        if not suffix or self.config.image_token_index in suffix:
            raise ValueError("suffix: the non-empty ids after <image>, without another <image>")
        eos_token_id, pad_token_id = self._stop_ids(eos_token_id, pad_token_id)
        embed = self.llm.get_input_embeddings()
        ids = torch.tensor([suffix], dtype=torch.long, device=embed.weight.device)
        mask = torch.ones(1, prefix.length + len(suffix), dtype=torch.long, device=ids.device)
        positions = prefix.length + torch.arange(len(suffix), device=ids.device)[None]
        for step in self._steps(embed(ids), mask, positions, prefix.expanded(1), max_new_tokens, eos_token_id,
                                pad_token_id, [sampling]):
            if step[0] == eos_token_id:
                return
            yield step[0]

    def _decode(self, embeds, mask, positions, past, max_new_tokens: int, eos_token_id: int,
                pad_token_id: int, samplings: list[Sampling | None] | None = None) -> list[list[int]]:
        """Decoding from a first step of ``embeds`` [B, L, D] (after the cache ``past``, if any): greedy, or each
        row as its ``samplings`` entry says."""
        outputs: list[list[int]] = [[] for _ in range(embeds.shape[0])]
        done = [False] * embeds.shape[0]
        for tokens in self._steps(embeds, mask, positions, past, max_new_tokens, eos_token_id, pad_token_id,
                                  samplings):
            for k, token in enumerate(tokens):
                if not done[k]:
                    outputs[k].append(token)
                    done[k] = token == eos_token_id
        return [[t for t in seq if t != eos_token_id] for seq in outputs]

    def _steps(self, embeds, mask, positions, past, max_new_tokens: int, eos_token_id: int, pad_token_id: int,
               samplings: list[Sampling | None] | None = None):
        """Each step's chosen token per row (``model.sampling.TokenChooser``: the argmax, or drawn as the row's
        ``samplings`` entry says; a row that ended continues with padding) until every row has produced the end
        of turn or ``max_new_tokens`` steps."""
        choose = TokenChooser(samplings, embeds.shape[0], embeds.device)
        finished = torch.zeros(embeds.shape[0], dtype=torch.bool, device=embeds.device)
        step_embeds, step_positions = embeds, positions
        for _ in range(max_new_tokens):
            out = self.llm(inputs_embeds=step_embeds, attention_mask=mask, position_ids=step_positions,
                           past_key_values=past, use_cache=True, logits_to_keep=1)
            past = out.past_key_values
            next_tokens = choose(out.logits[:, -1])
            yield next_tokens.tolist()
            finished |= next_tokens == eos_token_id
            if finished.all():
                return
            next_tokens = torch.where(finished, torch.full_like(next_tokens, pad_token_id), next_tokens)
            step_embeds = self.llm.get_input_embeddings()(next_tokens)[:, None]
            step_positions = step_positions[:, -1:] + 1
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)


@dataclass
class PrefixCache:
    """A prompt prefix (system turn, user header, a video's embeddings) run once through the LLM: its key/value
    cache (batch 1) and length. ``expanded`` gives a cache for a batch of questions that continues from it
    without changing it (``DynamicCache`` copies what it is given and grows by concatenation)."""

    past: DynamicCache
    length: int

    def expanded(self, batch: int) -> DynamicCache:
        layers = [(layer.keys.expand(batch, -1, -1, -1), layer.values.expand(batch, -1, -1, -1))
                  for layer in self.past.layers]
        return DynamicCache(ddp_cache_data=layers)

    @property
    def nbytes(self) -> int:
        return sum(layer.keys.nbytes + layer.values.nbytes for layer in self.past.layers)
