"""Asking questions about videos: decoding, preprocessing, per-video caches, prompting, generation.

Encoding a video (SigLIP + CUT3R over 32 frames) costs far more than answering one question about it, and the
~6.7k visual tokens of a 32-frame video cost more to prefill than the question after them. So two per-video
caches, keyed by the file's path, size and modification time and the number of frames, least recently used
evicted first:
- the visual embeddings (``video_embeddings``): several questions about one video encode it once;
- the prefilled prompt prefix (``video_prefix``: system turn, user header, the video's embeddings, as a KV
  cache): ``ask_video`` continues every question from it, which gives the answers of prefilling each whole
  prompt (the prompt is ``...user\\n<image>\\n{question}``, and attention is causal).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

from vlm3r.model.loading import load_tokenizer
from vlm3r.model.modeling_vlm3r import PrefixCache, Vlm3rModel
from vlm3r.model.prompt import chat_prompt, tokenize_with_images, video_question
from vlm3r.model.video import siglip_pixels
from vlm3r.utils.video import read_video_frames

EMBEDDING_CACHE_VIDEOS = 8
PREFIX_CACHE_VIDEOS = 2  # a 7B prefix is about 0.4 GB in bf16


class Vlm3rPipeline:
    def __init__(self, model: Vlm3rModel, tokenizer, num_frames: int | None = None,
                 cache_size: int = EMBEDDING_CACHE_VIDEOS, prefix_cache_size: int = PREFIX_CACHE_VIDEOS):
        self.model, self.tokenizer = model, tokenizer
        self.num_frames = model.config.num_frames if num_frames is None else num_frames
        if self.num_frames < 1:
            raise ValueError(f"num_frames: at least 1 frame per video, got {self.num_frames}")
        self.cache_size, self.prefix_cache_size = cache_size, prefix_cache_size
        self._cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._prefixes: OrderedDict[tuple, PrefixCache] = OrderedDict()
        self.encodings = 0  # videos encoded so far (embedding cache misses)
        self.prefills = 0  # prefixes prefilled so far (prefix cache misses)
        self.eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")

    @classmethod
    def from_pretrained(cls, model_path, cut3r_path=None, base_path=None, dtype=torch.float32, device="cpu",
                        num_frames: int | None = None, vision_tower=None) -> Vlm3rPipeline:
        """``Vlm3rModel.from_pretrained`` with the base's tokenizer, the embeddings cut to its length as the
        official inference loader does."""
        model = Vlm3rModel.from_pretrained(model_path, cut3r=cut3r_path, base=base_path, dtype=dtype, device=device,
                                           vision_tower=vision_tower)
        tokenizer = load_tokenizer(model.files.base)
        model.fit_tokenizer(tokenizer)
        return cls(model, tokenizer, num_frames)

    # ------------------------------------------------------------------ per-video caches
    def _key(self, video: Path | str) -> tuple:
        path = Path(video).resolve()
        stat = path.stat() if path.is_file() else None
        return str(path), stat.st_size if stat else None, stat.st_mtime_ns if stat else None, self.num_frames

    @staticmethod
    def _remember(cache: OrderedDict, key: tuple, value, size: int) -> None:
        cache[key] = value
        while len(cache) > size:
            cache.popitem(last=False)

    def video_embeddings(self, video: Path | str) -> torch.Tensor:
        key = self._key(video)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        frames, _, _ = read_video_frames(key[0], self.num_frames)
        device = self.model.image_newline.device
        pixels = siglip_pixels(frames, self.model.config.vision.image_size).to(device)
        with torch.inference_mode():
            embeddings = self.model.visual_embeddings(pixels)
        self.encodings += 1
        self._remember(self._cache, key, embeddings, self.cache_size)
        return embeddings

    def video_prefix(self, video: Path | str) -> PrefixCache:
        key = self._key(video)
        if key in self._prefixes:
            self._prefixes.move_to_end(key)
            return self._prefixes[key]
        prefix = self.model.prefill(self.prefix_ids, self.video_embeddings(video))
        self.prefills += 1
        self._remember(self._prefixes, key, prefix, self.prefix_cache_size)
        return prefix

    # ------------------------------------------------------------------ prompts
    def prompt_ids(self, question: str) -> list[int]:
        return tokenize_with_images(self.tokenizer, chat_prompt(video_question(question)),
                                    self.model.config.image_token_index)

    @property
    def prefix_ids(self) -> list[int]:
        """The prompt up to ``<image>``: the same for every question."""
        ids = self.prompt_ids("")
        return ids[:ids.index(self.model.config.image_token_index)]

    def suffix_ids(self, question: str) -> list[int]:
        """The prompt after ``<image>``: the question and the open assistant turn."""
        ids = self.prompt_ids(question)
        at = ids.index(self.model.config.image_token_index)
        if ids[:at] != self.prefix_ids:
            raise ValueError(f"question {question[:60]!r}: its prompt does not start with the shared prefix")
        return ids[at + 1:]

    def _text(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True).strip()

    # ------------------------------------------------------------------ answers
    def ask(self, video: Path | str, question: str, max_new_tokens: int = 16) -> str:
        """One answer, its whole prompt prefilled (the path every other one is checked against)."""
        return self.ask_many([video], [question], max_new_tokens)[0]

    def ask_many(self, videos: list, questions: list[str], max_new_tokens: int = 16) -> list[str]:
        """Answers for (video, question) pairs, generated as one batch (each video keeps its own CUT3R state)."""
        ids = [self.prompt_ids(q) for q in questions]
        visuals = [self.video_embeddings(v) for v in videos]
        outputs = self.model.generate(ids, visuals, max_new_tokens=max_new_tokens, eos_token_id=self.eos,
                                      pad_token_id=self.pad)
        return [self._text(o) for o in outputs]

    def ask_video(self, video: Path | str, questions: list[str], max_new_tokens: int = 16,
                  batch_size: int = 1) -> list[str]:
        """Answers to several questions about one video: encoded and prefilled once, then ``batch_size``
        questions at a time continue from the prefix."""
        if batch_size < 1:
            raise ValueError(f"batch_size: at least 1, got {batch_size}")
        prefix = self.video_prefix(video)
        suffixes = [self.suffix_ids(q) for q in questions]
        answers = []
        for start in range(0, len(suffixes), batch_size):
            outputs = self.model.generate_from_prefix(prefix, suffixes[start:start + batch_size], max_new_tokens,
                                                      self.eos, self.pad)
            answers += [self._text(o) for o in outputs]
        return answers
