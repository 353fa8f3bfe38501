"""Asking questions about videos: decoding, preprocessing, a per-video embedding cache, prompting, generation.

Encoding a video (SigLIP + CUT3R over 32 frames) costs far more than answering one question about it, so the
visual embeddings of recent videos are cached, keyed by the file's path, size and modification time and the
number of frames: several questions about one video encode it once.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

from vlm3r.model.loading import load_tokenizer
from vlm3r.model.modeling_vlm3r import Vlm3rModel
from vlm3r.model.prompt import chat_prompt, tokenize_with_images, video_question
from vlm3r.model.video import siglip_pixels
from vlm3r.utils.video import read_video_frames


class Vlm3rPipeline:
    def __init__(self, model: Vlm3rModel, tokenizer, num_frames: int | None = None, cache_size: int = 8):
        self.model, self.tokenizer = model, tokenizer
        self.num_frames = model.config.num_frames if num_frames is None else num_frames
        if self.num_frames < 1:
            raise ValueError(f"num_frames: at least 1 frame per video, got {self.num_frames}")
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self.encodings = 0  # videos encoded so far (cache misses)

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

    def video_embeddings(self, video: Path | str) -> torch.Tensor:
        path = Path(video).resolve()
        stat = path.stat() if path.is_file() else None
        key = (str(path), stat.st_size if stat else None, stat.st_mtime_ns if stat else None, self.num_frames)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        frames, _, _ = read_video_frames(path, self.num_frames)
        device = self.model.image_newline.device
        pixels = siglip_pixels(frames, self.model.config.vision.image_size).to(device)
        with torch.inference_mode():
            embeddings = self.model.visual_embeddings(pixels)
        self.encodings += 1
        self._cache[key] = embeddings
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return embeddings

    def ask(self, video: Path | str, question: str, max_new_tokens: int = 16) -> str:
        return self.ask_many([video], [question], max_new_tokens)[0]

    def ask_many(self, videos: list, questions: list[str], max_new_tokens: int = 16) -> list[str]:
        """Answers for (video, question) pairs, generated as one batch (each video keeps its own CUT3R state)."""
        ids = [tokenize_with_images(self.tokenizer, chat_prompt(video_question(q)),
                                    self.model.config.image_token_index) for q in questions]
        visuals = [self.video_embeddings(v) for v in videos]
        eos = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        pad = self.tokenizer.convert_tokens_to_ids("<|endoftext|>")
        outputs = self.model.generate(ids, visuals, max_new_tokens=max_new_tokens, eos_token_id=eos,
                                      pad_token_id=pad)
        return [self.tokenizer.decode(o, skip_special_tokens=True).strip() for o in outputs]
