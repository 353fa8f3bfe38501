"""Asking questions about videos: decoding, preprocessing, per-video caches, prompting, generation.

Encoding a video (SigLIP + CUT3R over 32 frames) costs far more than answering one question about it, and the
~6.7k visual tokens of a 32-frame video cost more to prefill than the question after them. So two per-video
caches, keyed by what the file holds (the SHA-256 of its bytes, ``utils.fileio.FileDigests``) and the number of
frames, least recently used evicted first:
- the visual embeddings (``video_embeddings``): several questions about one video encode it once;
- the prefilled prompt prefix (``video_prefix``: system turn, user header, the video's embeddings, as a KV
  cache): ``ask_video`` continues every question from it, which gives the answers of prefilling each whole
  prompt (the prompt is ``...user\\n<image>\\n{question}``, and attention is causal).
"""

from __future__ import annotations

import math
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from vlm3r.errors import InputError
from vlm3r.model.loading import load_tokenizer
from vlm3r.model.modeling_vlm3r import PrefixCache, Vlm3rModel
from vlm3r.model.prompt import (IMAGE, MAX_NEW_TOKENS, PromptTemplate, Template, chat_prompt, encode, eos_id,
                                images_question, longest_token_bytes, newline_id, pad_id)
from vlm3r.model.sampling import Sampling
from vlm3r.model.video import siglip_pixels
from vlm3r.utils.devices import AUTO, Placement, dtype_name, placement, torch_dtype
from vlm3r.utils.fileio import FileDigests
from vlm3r.utils.frames import linspace_indices
from vlm3r.utils.images import list_images, read_images
from vlm3r.utils.video import read_video_frames, require_file, sampled_timing

# Unicode normalization, which the tokenizer applies before splitting (Qwen2: NFC), can shorten text: at most 4x in
# UTF-8 bytes (a 4-byte character with a 1-byte compatibility form); text already in NFKC is left as it is.
MAX_NORMALIZED_SHRINK = 4
EMBEDDING_CACHE_VIDEOS = 8
PREFIX_CACHE_VIDEOS = 2  # a 7B prefix is about 0.4 GB in bf16
TIMING_CACHE_VIDEOS = 4096  # videos whose sampled frame times are kept (a few hundred bytes each)
EMPTY_ANSWER = ("the model gave an empty answer (it ended its turn at once): it may not have been trained on "
                "this kind of question, or the prompt differs from its training prompt (docs/model.md, "
                "\"Prompt template\")")


def nbytes(value) -> int:
    return value.nbytes if isinstance(value, PrefixCache) else value.numel() * value.element_size()


class VideoCaches:
    """The two per-video caches: each at most its number of videos, together at most ``max_bytes`` (None: no
    byte bound); the least recently used entry of either goes first. The byte total and the counts are kept as
    numbers, so that reading them (``/health``, from another thread) never walks the entries."""

    def __init__(self, embedding_videos: int, prefix_videos: int, max_bytes: int | None = None):
        self.limits = {"embeddings": embedding_videos, "prefixes": prefix_videos}
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, tuple], object] = OrderedDict()  # oldest use first
        self._counts = dict.fromkeys(self.limits, 0)
        self.nbytes = 0

    def get(self, kind: str, key: tuple):
        value = self._entries.get((kind, key))
        if value is not None:
            self._entries.move_to_end((kind, key))
        return value

    def put(self, kind: str, key: tuple, value) -> None:
        self._drop((kind, key))
        self._entries[(kind, key)] = value
        self._counts[kind] += 1
        self.nbytes += nbytes(value)
        while self._counts[kind] > self.limits[kind]:
            self._drop(next(k for k in self._entries if k[0] == kind))
        while self.max_bytes is not None and self.nbytes > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))

    def _drop(self, entry: tuple[str, tuple]) -> None:
        value = self._entries.pop(entry, None)
        if value is not None:
            self._counts[entry[0]] -= 1
            self.nbytes -= nbytes(value)

    def videos(self, kind: str) -> int:
        return self._counts[kind]


class PromptTooLongError(InputError):
    """A prompt and its answer that do not fit the LLM's context; the message gives the counts."""


@dataclass
class Answer:
    """One answer with what it cost: its tokens (end of turn excluded), the prompt's length in LLM positions
    (text and visual embeddings) and whether it stopped at ``max_new_tokens``."""

    text: str
    tokens: list[int]
    prompt_tokens: int
    truncated: bool


@dataclass(frozen=True)
class AskRequest:
    """What ``vlm3r ask`` asks about: a video, or an image sequence (``images``: folders, glob patterns or files)
    in the reference's image layout or, ``as_video``, as a video's frames."""

    question: str
    video: Path | None = None
    images: tuple[str, ...] = ()
    as_video: bool = False

    @classmethod
    def from_arguments(cls, arguments: list[str], images: list[str] | None = None,
                       as_video: bool = False) -> AskRequest:
        """The command line's positional ``arguments`` (VIDEO QUESTION, or QUESTION with ``--images``), checked
        before any model is loaded."""
        if images:
            if len(arguments) != 1:
                raise InputError(f"with --images, give only the question (got {len(arguments)} arguments: "
                                 f"{arguments!r})")
            return cls(arguments[0], images=tuple(images), as_video=as_video)
        if as_video:
            raise InputError("--as-video: it treats --images as a video's frames; give --images")
        if len(arguments) != 2:
            raise InputError(f"give a VIDEO and a QUESTION, or --images and a QUESTION (got {len(arguments)} "
                             f"arguments: {arguments!r})")
        return cls(arguments[1], video=Path(arguments[0]))

    def answer(self, pipeline: Vlm3rPipeline, max_new_tokens: int = MAX_NEW_TOKENS) -> str:
        if self.video is not None:
            return pipeline.ask(self.video, self.question, max_new_tokens)
        return pipeline.ask_images(list(self.images), self.question, max_new_tokens, self.as_video)


class Vlm3rPipeline:
    def __init__(self, model: Vlm3rModel, tokenizer, num_frames: int | None = None,
                 cache_size: int = EMBEDDING_CACHE_VIDEOS, prefix_cache_size: int = PREFIX_CACHE_VIDEOS,
                 max_cache_bytes: int | None = None, upright: bool = True):
        self.model, self.tokenizer = model, tokenizer
        self.upright = upright  # video frames turned as the file's rotation says (utils.video.read_video_frames)
        self.num_frames = model.config.num_frames if num_frames is None else num_frames
        if self.num_frames < 1:
            raise InputError(f"num_frames: at least 1 frame per video, got {self.num_frames}")
        self.caches = VideoCaches(cache_size, prefix_cache_size, max_cache_bytes)
        self.digests = FileDigests()
        self.encodings = 0  # videos encoded so far (embedding cache misses)
        self.prefills = 0  # prefixes prefilled so far (prefix cache misses)
        self.eos, self.pad = eos_id(tokenizer), pad_id(tokenizer)
        self.template: PromptTemplate = model.config.prompt
        parameter = next(model.parameters())
        self.placement = Placement(str(parameter.device), dtype_name(parameter.dtype))
        self._timings: OrderedDict[tuple, tuple] = OrderedDict()  # video key -> (sampled indices, frame rate)

    @classmethod
    def from_pretrained(cls, model_path, cut3r_path=None, base_path=None, dtype=torch.float32, device="cpu",
                        num_frames: int | None = None, vision_tower=None,
                        max_cache_bytes: int | None = None, upright: bool = True) -> Vlm3rPipeline:
        """``Vlm3rModel.from_pretrained`` with the base's tokenizer, the embeddings cut to its length as the
        official inference loader does; ``max_cache_bytes`` bounds the per-video caches (None: by count only)."""
        model = Vlm3rModel.from_pretrained(model_path, cut3r=cut3r_path, base=base_path, dtype=dtype, device=device,
                                           vision_tower=vision_tower)
        tokenizer = load_tokenizer(model.files.base)
        model.fit_tokenizer(tokenizer)
        return cls(model, tokenizer, num_frames, max_cache_bytes=max_cache_bytes, upright=upright)

    @classmethod
    def from_options(cls, model, cut3r=None, base=None, vision_tower=None, *, dtype: str = AUTO,
                     device: str = AUTO, frames: int | None = None, max_cache_bytes: int | None = None,
                     dtype_option: str = "--dtype", device_option: str = "--device",
                     upright: bool = True) -> Vlm3rPipeline:
        """The pipeline that a command's options name (``vlm3r ask``, ``serve``, ``eval run``, the lmms-eval
        model): the dtype by name (fp32, bf16, fp16) and the device, ``auto`` for the best this machine has
        (``utils.devices.placement``), both checked before any file is read (an error names them as
        ``dtype_option`` and ``device_option``: the command's options, or lmms-eval's ``model_args``), then
        ``from_pretrained``. ``pipeline.placement`` says what was chosen."""
        chosen = placement(device, dtype, device_option, dtype_option)
        pipeline = cls.from_pretrained(model, cut3r, base, torch_dtype(chosen.dtype), chosen.device, frames,
                                       vision_tower, max_cache_bytes, upright)
        pipeline.placement = chosen
        return pipeline

    def stats(self) -> dict[str, int]:
        """What the pipeline has done and holds: videos encoded and prefixes prefilled so far (cache misses),
        the caches' bytes and videos. Read from numbers the caches keep, so another thread may ask."""
        return {"encodings": self.encodings, "prefills": self.prefills, "cached_bytes": self.caches.nbytes,
                "cached_embeddings": self.caches.videos("embeddings"),
                "cached_prefixes": self.caches.videos("prefixes")}

    # ------------------------------------------------------------------ per-video caches
    def _key(self, path: Path) -> tuple:
        """What the caches know a video by: its bytes' digest (a file replaced by another of the same size and
        time is another video) and the frame count."""
        require_file(path)
        return self.digests.digest(path), self.num_frames

    def video_embeddings(self, video: Path | str) -> torch.Tensor:
        path = Path(video).resolve()
        key = self._key(path)
        cached = self.caches.get("embeddings", key)
        if cached is not None:
            return cached
        frames, indices, fps = read_video_frames(path, self.num_frames, self.upright)
        self._remember_timing(key, (indices, fps))
        device = self.model.image_newline.device
        pixels = siglip_pixels(frames, self.model.config.vision.image_size).to(device)
        with torch.inference_mode():
            embeddings = self.model.visual_embeddings(pixels)
        self.encodings += 1
        self.caches.put("embeddings", key, embeddings)
        return embeddings

    def video_prefix(self, video: Path | str) -> PrefixCache:
        return self._cached_prefix(self._key(Path(video).resolve()), lambda: self.video_embeddings(video))

    def _cached_prefix(self, key: tuple, embeddings) -> PrefixCache:
        """The prompt prefilled up to the end of a source's embeddings (``embeddings()``), cached under ``key``."""
        cached = self.caches.get("prefixes", key)
        if cached is not None:
            return cached
        prefix = self.model.prefill(self.prefix_ids, embeddings())
        self.prefills += 1
        self.caches.put("prefixes", key, prefix)
        return prefix

    # ------------------------------------------------------------------ prompts
    def _remember_timing(self, key: tuple, timing: tuple) -> None:
        self._timings[key] = timing
        self._timings.move_to_end(key)
        while len(self._timings) > TIMING_CACHE_VIDEOS:
            self._timings.popitem(last=False)

    def video_timing(self, video: Path | str) -> tuple:
        """(sampled frame indices, frame rate) of a video, for the time instruction: as its encoding sampled them,
        else read from the file's packets without decoding (``utils.video.sampled_timing``)."""
        path = Path(video).resolve()
        key = self._key(path)
        if key not in self._timings:
            self._remember_timing(key, sampled_timing(path, self.num_frames))
        return self._timings[key]

    def user_turn(self, question: str, video: Path | str | None = None, template: Template | None = None) -> list:
        """The user turn of ``question`` about ``video`` in ``template`` (None: the model's own,
        ``model.config.prompt``; a benchmark may give the reference's, ``model.prompt.ReferenceQaPrompt``).
        ``video`` None: without the time instruction, the shortest form (only to refuse a prompt early)."""
        template = self.template if template is None else template
        if template.time_instruction and video is None:
            template = template.untimed()
        return template.user_turn(question, self.video_timing(video) if template.time_instruction else None)

    def prompt_ids(self, question: str, video: Path | str | None = None, template: Template | None = None) -> list[int]:
        """The whole prompt's ids, the question read literally (docs/design.md, model §1.10)."""
        return encode(self.tokenizer, chat_prompt(*self.user_turn(question, video, template)),
                      self.model.config.image_token_index)

    @cached_property
    def prefix_ids(self) -> list[int]:
        """The prompt up to ``<image>``: the same for every question."""
        pieces = chat_prompt(*self.user_turn(""))
        return encode(self.tokenizer, pieces[:pieces.index(IMAGE)])

    def suffix_ids(self, question: str, video: Path | str | None = None, template: Template | None = None) -> list[int]:
        """The prompt after ``<image>``: the time instruction if the template has it, the question and the open
        assistant turn. Every template starts the user turn with the video, so the prefix is shared."""
        pieces = chat_prompt(*self.user_turn(question, video, template))
        return encode(self.tokenizer, pieces[pieces.index(IMAGE) + 1:])

    @property
    def video_tokens(self) -> int:
        """LLM positions of one video: ``num_frames`` frames (a shorter video's frames are sampled repeatedly)."""
        return self.num_frames * self.model.config.tokens_per_frame

    @cached_property
    def longest_token_bytes(self) -> int:
        return longest_token_bytes(self.tokenizer)

    def checked_suffix_ids(self, question: str, max_new_tokens: int, video: Path | str | None = None,
                           template: Template | None = None) -> list[int]:
        """``suffix_ids``, refused (``PromptTooLongError``) when the prompt and ``max_new_tokens`` exceed the LLM's
        context. Tokenizing a huge question is itself work, so a question too long by its UTF-8 bytes alone (no
        token stands for more than ``longest_token_bytes``) is refused without being tokenized."""
        context = self.model.config.llm.max_position_embeddings
        fixed = len(self.prefix_ids) + self.video_tokens
        parts = f"prompt prefix {len(self.prefix_ids)}, video {self.video_tokens}"
        size = len(question.encode("utf-8"))
        if fixed + size + max_new_tokens > context:  # a token has at least one byte: this may not fit
            shrink = 1 if unicodedata.is_normalized("NFKC", question) else MAX_NORMALIZED_SHRINK
            least = math.ceil(size / (self.longest_token_bytes * shrink))
            if fixed + least + max_new_tokens > context:
                raise PromptTooLongError(f"the prompt is too long: the question is {size} bytes, so at least {least} "
                                         f"tokens; with the {parts} and max_tokens {max_new_tokens} that is more "
                                         f"than the model's context of {context} tokens")
        suffix = self.suffix_ids(question, video, template)
        if fixed + len(suffix) + max_new_tokens > context:
            raise PromptTooLongError(f"the prompt is too long: {fixed + len(suffix)} tokens ({parts}, question "
                                     f"{len(suffix)}) and max_tokens {max_new_tokens} are more than the model's "
                                     f"context of {context} tokens")
        return suffix

    def _text(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True).strip()

    # ------------------------------------------------------------------ answers
    def ask(self, video: Path | str, question: str, max_new_tokens: int = MAX_NEW_TOKENS) -> str:
        """One answer, its whole prompt prefilled (the path every other one is checked against)."""
        return self.ask_many([video], [question], max_new_tokens)[0]

    def ask_many(self, videos: list, questions: list[str], max_new_tokens: int = MAX_NEW_TOKENS) -> list[str]:
        """Answers for (video, question) pairs, generated as one batch (each video keeps its own CUT3R state)."""
        for video, question in zip(videos, questions):
            self.checked_suffix_ids(question, max_new_tokens, video)
        ids = [self.prompt_ids(q, v) for v, q in zip(videos, questions)]
        visuals = [self.video_embeddings(v) for v in videos]
        outputs = self.model.generate(ids, visuals, max_new_tokens=max_new_tokens, eos_token_id=self.eos,
                                      pad_token_id=self.pad)
        return [self._text(o) for o in outputs]

    def ask_video(self, video: Path | str, questions: list[str], max_new_tokens: int = MAX_NEW_TOKENS,
                  batch_size: int = 1, template: Template | None = None) -> list[str]:
        """Answers to several questions about one video: encoded and prefilled once, then ``batch_size``
        questions at a time continue from the prefix; ``template``: the user turn's form (None: the model's)."""
        return [a.text for a in self.answer_video(video, questions, max_new_tokens, batch_size, template=template)]

    def answer_video(self, video: Path | str | tuple[Path, ...], questions: list[str],
                     max_new_tokens: int = MAX_NEW_TOKENS, batch_size: int = 1,
                     samplings: list[Sampling | None] | None = None,
                     template: Template | None = None) -> list[Answer]:
        """``ask_video`` with each answer's tokens and prompt length. ``samplings``: how each question's answer is
        decoded (``model.sampling.Sampling``, one per question; None: greedy, as the benchmarks answer). ``video``
        may be an image sequence (a tuple of image files), asked in the reference's image layout."""
        if batch_size < 1:
            raise InputError(f"batch_size: at least 1, got {batch_size}")
        if samplings is not None and len(samplings) != len(questions):
            raise InputError(f"samplings: one per question ({len(questions)}), got {len(samplings)}")
        prefix, suffixes = self._prefix_and_suffixes(video, questions, max_new_tokens, template)
        answers = []
        for start in range(0, len(suffixes), batch_size):
            batch = suffixes[start:start + batch_size]
            rows = None if samplings is None else samplings[start:start + batch_size]
            outputs = self.model.generate_from_prefix(prefix, batch, max_new_tokens, self.eos, self.pad, rows)
            answers += [Answer(self._text(o), o, prefix.length + len(s), len(o) >= max_new_tokens)
                        for s, o in zip(batch, outputs)]
        return answers

    def _prefix_and_suffixes(self, source, questions: list[str], max_new_tokens: int,
                             template: Template | None = None) -> tuple[PrefixCache, list[list[int]]]:
        """The cached prefix of a video or an image sequence (a tuple of files) and each question's suffix, every
        prompt checked against the context before any model work."""
        if isinstance(source, tuple):
            for question in questions:
                self.check_images_fit(len(source), question, max_new_tokens)
            return self.image_set_prefix(source), [self.image_suffix_ids(len(source), q) for q in questions]
        suffixes = [self.checked_suffix_ids(q, max_new_tokens, source, template) for q in questions]
        return self.video_prefix(source), suffixes

    # ------------------------------------------------------------------ image sequences
    def _image_set_key(self, paths: tuple[Path, ...]) -> tuple:
        """What the caches know an image sequence by: its files' digests, in order."""
        return ("images", *(self.digests.digest(p) for p in list_images([Path(p).resolve() for p in paths])))

    def image_set_embeddings(self, paths: tuple[Path, ...]) -> torch.Tensor:
        """An image sequence's embeddings as its prompt holds them from the first ``<image>`` to the last: each
        image's block (``Vlm3rModel.image_embeddings``) and, between two, the ``\n`` token's embedding; cached
        like a video's."""
        key = self._image_set_key(paths)
        cached = self.caches.get("embeddings", key)
        if cached is not None:
            return cached
        with torch.inference_mode():
            blocks = self.model.image_embeddings(self.image_pixels(list(paths)))
            embed = self.model.llm.get_input_embeddings()
            newline = embed(torch.tensor([newline_id(self.tokenizer)], device=embed.weight.device)).to(blocks[0].dtype)
            joined = torch.cat([part for block in blocks for part in (block, newline)][:-1])
        self.encodings += 1
        self.caches.put("embeddings", key, joined)
        return joined

    def image_set_prefix(self, paths: tuple[Path, ...]) -> PrefixCache:
        """The prompt prefilled up to the end of the last image (every question about the sequence goes on from
        there)."""
        return self._cached_prefix(self._image_set_key(paths), lambda: self.image_set_embeddings(paths))

    def image_suffix_ids(self, count: int, question: str) -> list[int]:
        """The reference's image prompt after its last ``<image>``: ``\n``, the question, the open assistant turn."""
        pieces = chat_prompt(*images_question(count, question))
        last = max(k for k, piece in enumerate(pieces) if piece == IMAGE)
        return encode(self.tokenizer, pieces[last + 1:])

    def image_pixels(self, paths: list[Path]) -> torch.Tensor:
        """The images read (``utils.images.read_images``) and preprocessed for SigLIP, each squashed on its own."""
        frames = read_images(paths)
        return siglip_pixels(frames, self.model.config.vision.image_size).to(self.model.image_newline.device)

    def images_prompt_ids(self, count: int, question: str) -> list[int]:
        """The reference's prompt for ``count`` images: ``<image>\n`` per image, then the question as given."""
        return encode(self.tokenizer, chat_prompt(*images_question(count, question)),
                      self.model.config.image_token_index)

    def images_length(self, count: int, question: str) -> int:
        """LLM positions of the prompt for ``count`` images (each ``<image>`` replaced by its embeddings)."""
        grid = self.model.config.grid
        return len(self.images_prompt_ids(count, question)) + count * (grid * (grid + 1) - 1)

    def check_images_fit(self, count: int, question: str, max_new_tokens: int) -> None:
        """Refuse (``PromptTooLongError``, saying how many would fit) images whose prompt and ``max_new_tokens``
        pass the LLM's context; the reference cuts such a prompt short at its tokenizer's maximum length."""
        context = self.model.config.llm.max_position_embeddings
        if self.images_length(count, question) + max_new_tokens <= context:
            return
        one = self.images_length(1, question)
        step = self.images_length(2, question) - one  # each further image: its embeddings and a newline
        fit = max(0, (context - max_new_tokens - one) // step + 1) if one + max_new_tokens <= context else 0
        raise PromptTooLongError(f"{count} images do not fit: their prompt is {self.images_length(count, question)} "
                                 f"tokens and with max_tokens {max_new_tokens} more than the model's context of "
                                 f"{context}; at most {fit} images fit (or ask with --as-video)")

    def ask_images(self, images, question: str, max_new_tokens: int = MAX_NEW_TOKENS, as_video: bool = False) -> str:
        """The answer to a question about an image sequence (``images``: folders, glob patterns or files,
        ``utils.images.list_images``). By default as the reference asks about images: each image its own
        ``<image>``, unpooled, CUT3R over all of them in order. ``as_video``: as a video's sampled frames
        (``num_frames`` of them spread by linspace, pooled, one ``<image>``, the model's own prompt without the
        time instruction, since images have no frame rate)."""
        paths = list_images(images)
        if not as_video:
            return self.ask_image_set(paths, [question], max_new_tokens)[0]
        chosen = [paths[i] for i in linspace_indices(len(paths), self.num_frames)]
        template = self.template.untimed() if self.template.time_instruction else self.template
        ids = encode(self.tokenizer, chat_prompt(*template.user_turn(question)), self.model.config.image_token_index)
        with torch.inference_mode():
            visual = self.model.visual_embeddings(self.image_pixels(chosen))
        context = self.model.config.llm.max_position_embeddings
        length = len(ids) - 1 + len(visual)  # the one <image> id replaced by the embeddings
        if length + max_new_tokens > context:
            raise PromptTooLongError(f"the prompt is {length} tokens and with max_tokens {max_new_tokens} more than "
                                     f"the model's context of {context}")
        return self._text(self.model.generate([ids], [visual], max_new_tokens, self.eos, self.pad)[0])

    def ask_image_set(self, paths: list[Path], questions: list[str], max_new_tokens: int = MAX_NEW_TOKENS,
                      batch_size: int = 1) -> list[str]:
        """Answers to several questions about one image sequence (the files, in order) in the reference's image
        layout: encoded and prefilled once (cached, as a video is), then ``batch_size`` questions at a time."""
        return self.ask_video(tuple(paths), questions, max_new_tokens, batch_size)

    def stream_video(self, video: Path | str | tuple[Path, ...], question: str, max_new_tokens: int = MAX_NEW_TOKENS,
                     sampling: Sampling | None = None):
        """The answer to one question as text pieces while it is generated; joined, they are ``answer_video``'s
        answer with the same ``sampling`` exactly (leading and trailing whitespace held back, as the whole answer
        is stripped). Returns (by ``StopIteration.value``) the ``Answer``."""
        prefix, (suffix,) = self._prefix_and_suffixes(video, [question], max_new_tokens)
        tokens, sent = [], ""
        for token in self.model.stream_from_prefix(prefix, suffix, max_new_tokens, self.eos, self.pad, sampling):
            tokens.append(token)
            text = self.tokenizer.decode(tokens, skip_special_tokens=True).lstrip()
            ready = text.rstrip()
            if ready.startswith(sent) and len(ready) > len(sent) and "\ufffd" not in ready[len(sent):]:
                yield ready[len(sent):]
                sent = ready
        final = self._text(tokens)
        if final.startswith(sent) and len(final) > len(sent):
            yield final[len(sent):]
        return Answer(final, tokens, prefix.length + len(suffix), len(tokens) >= max_new_tokens)
