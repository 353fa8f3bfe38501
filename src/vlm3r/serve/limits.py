"""A request's prompt against the LLM's context, counted before any model work.

The LLM sees the prompt prefix (system turn, user header), the video's visual tokens, the question's suffix (the
question and the open assistant turn), then writes up to ``max_tokens``; all of it must fit the model's
``max_position_embeddings``. Tokenizing a huge question is itself work, so its UTF-8 byte count bounds it first:
no token stands for more than the longest token's bytes, so a question of B bytes is at least B / that tokens.
"""

from __future__ import annotations

import math
import unicodedata

from vlm3r.serve.errors import RequestError

# Unicode normalization, which tokenizers apply before splitting (Qwen2: NFC), can shorten text: at most 4x in
# UTF-8 bytes (a 4-byte character with a 1-byte compatibility form). Text already in NFKC (ASCII, most text)
# is left as it is by NFC and NFKC alike.
MAX_NORMALIZED_SHRINK = 4


def longest_token_bytes(tokenizer) -> int:
    """The most UTF-8 bytes any one token decodes to (128 for Qwen2: a run of spaces)."""
    size = len(tokenizer)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        texts = backend.decode_batch([[i] for i in range(size)], skip_special_tokens=False)
    else:
        texts = [tokenizer.decode([i]) for i in range(size)]
    return max(len(t.encode("utf-8")) for t in texts)


class PromptBudget:
    """Checks that a question's prompt and ``max_tokens`` fit the LLM's context (a video counts as the
    pipeline's ``num_frames`` frames: what every video of at least that many frames gives)."""

    def __init__(self, pipeline):
        config = pipeline.model.config
        self.pipeline = pipeline
        self.context = config.llm.max_position_embeddings
        self.prefix = len(pipeline.prefix_ids)
        self.video = pipeline.num_frames * config.tokens_per_frame
        self.token_bytes = longest_token_bytes(pipeline.tokenizer)

    def check(self, question: str, max_tokens: int) -> int:
        """The prompt's length in LLM positions; ``RequestError`` (400) when it and ``max_tokens`` exceed the
        context. A question too long by its bytes alone is refused without being tokenized."""
        size = len(question.encode("utf-8"))
        shrink = 1 if unicodedata.is_normalized("NFKC", question) else MAX_NORMALIZED_SHRINK
        least = math.ceil(size / (self.token_bytes * shrink))
        fixed = self.prefix + self.video
        if fixed + least + max_tokens > self.context:
            raise RequestError(400, f"the prompt is too long: the question is {size} bytes, so at least {least} "
                                    f"tokens; with the prompt prefix {self.prefix}, the video {self.video} and "
                                    f"max_tokens {max_tokens} that is more than the model's context of "
                                    f"{self.context} tokens", param="messages")
        suffix = len(self.pipeline.suffix_ids(question))
        total = fixed + suffix
        if total + max_tokens > self.context:
            raise RequestError(400, f"the prompt is too long: {total} tokens (prompt prefix {self.prefix}, video "
                                    f"{self.video}, question {suffix}) and max_tokens {max_tokens} are more than "
                                    f"the model's context of {self.context} tokens", param="messages")
        return total
