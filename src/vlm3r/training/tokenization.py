"""Conversation -> (input ids, labels) as the reference's ``preprocess_qwen`` (docs/design.md, model §5.3).

Every message is rendered ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` and tokenized on its own, after a
system message. The sample's text is read literally (``model.prompt.encode``: a value that spells ``<|im_end|>``
is those characters, docs/design.md model §1.10), with ``<image>`` as the format's placeholder for the video. Labels:
system and user turns are ignored, assistant turns (header and closing tokens included) are learned. Masking
``"reference"`` then UN-masks every ``\\n`` (198), ``<|im_start|>`` and ``<|im_end|>`` everywhere, user turns
included, as LLaVA-NeXT does; training with the released recipe needs it. ``"assistant"`` leaves the user turns
fully ignored. ``"answer"`` also ignores each assistant turn's header (``<|im_start|>assistant\\n``): only what the
assistant says and its closing tokens are learned, so a model trained from scratch (the tiny recipe) spends its
first steps on answers rather than on the template's markers, which every turn repeats. The ids are the
tokenizer's, read by ``model.prompt``, and the two sentinels the caller passes (a model config's
``image_token_index`` and ``ignore_index``; ``model.prompt``'s defaults).
"""

from __future__ import annotations

from dataclasses import dataclass

from vlm3r.errors import InputError, Vlm3rError
from vlm3r.model.prompt import (IGNORE_INDEX, IM_END, IM_START, IMAGE, IMAGE_TOKEN_INDEX, SYSTEM, encode, marker_id,
                                newline_id, turn, with_image_slots)

ROLES = {"human": "user", "gpt": "assistant", "user": "user", "assistant": "assistant", "system": "system"}
MASKING = ("reference", "assistant", "answer")


class ConversationError(Vlm3rError):
    """A malformed conversation; the message names the sample and the field."""


@dataclass(frozen=True)
class Tokenized:
    input_ids: list[int]
    labels: list[int]
    images: int  # the ``<image>`` slots placed (each one ``image_token_index`` in the ids)


def tokenize_conversation(tokenizer, conversations: list[dict], masking: str = "reference", system: str = SYSTEM,
                          image_token_index: int = IMAGE_TOKEN_INDEX, ignore_index: int = IGNORE_INDEX) -> Tokenized:
    """Ids with ``image_token_index`` where ``<image>`` stood, and labels (``ignore_index`` where not learned)."""
    if masking not in MASKING:
        raise InputError(f"masking must be one of {MASKING}, got {masking!r}")
    messages = list(conversations)
    if messages and ROLES.get(messages[0].get("from", messages[0].get("role"))) != "user":
        messages = messages[1:]  # the reference drops a leading non-human turn
    ids = encode(tokenizer, turn("system", system), image_token_index)
    labels = [ignore_index] * len(ids)
    images = 0
    for k, message in enumerate(messages):
        role = ROLES.get(message.get("from", message.get("role")))
        content = message.get("value", message.get("content"))
        if role is None or not isinstance(content, str):
            raise ConversationError(f"conversations[{k}]: needs 'from' (human|gpt) and a string 'value', got "
                                    f"{sorted(message)}")
        pieces = turn(role, *with_image_slots(content))
        images += pieces.count(IMAGE)
        turn_ids = encode(tokenizer, pieces, image_token_index)
        ids += turn_ids
        if role != "assistant":
            labels += [ignore_index] * len(turn_ids)
        else:
            header = len(encode(tokenizer, [IM_START, f"{role}\n"])) if masking == "answer" else 0
            labels += [ignore_index] * header + turn_ids[header:]
    if masking == "reference":
        unmasked = {newline_id(tokenizer), marker_id(tokenizer, IM_START), marker_id(tokenizer, IM_END)}
        labels = [i if i in unmasked else label for i, label in zip(ids, labels)]
    return Tokenized(ids, labels, images)
