"""What the server reads and writes, as pydantic models in OpenAI's shapes: the chat request (FastAPI validates a
body against it), the answers (a completion, stream chunks), the model list, an upload, ``/health`` and the error
body.

A chat request is one user turn with a text part (the question) and one ``video_url`` part; its answer is greedy
unless it asks for sampling (``temperature`` above 0, with ``top_p`` and ``seed``: ``model.sampling``).
Fields this server does not implement are refused (400, ``param`` the field), not ignored: a field in neither
``CHECKED_FIELDS`` nor ``SERVED_VALUES`` with any value, one of ``SERVED_VALUES`` with a value other than those it
lists. ``describe`` turns pydantic's first error into the message and ``param`` of the 400.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, Strict, ValidationInfo, create_model, field_validator,
                      model_serializer, model_validator)
from pydantic_core import PydanticCustomError

from vlm3r.model.pipeline import Answer
from vlm3r.model.prompt import MAX_NEW_TOKENS
from vlm3r.model.sampling import MAX_TEMPERATURE, SEED_MAX, SEED_MIN, Sampling

MAX_TOKENS_LIMIT = 1024  # tokens: the longest answer a request may ask for
REFUSED = "vlm3r_refused"  # the error type of this module's own checks (their message is complete)
ECHO_CHARS = 60  # characters of a refused value that a message repeats

# OpenAI's other fields: the values this server serves (each the field's default, or one meaning the same here)
# and why others are not. A field in neither this table nor the request's own fields is refused too.
SERVED_VALUES: dict[str, tuple[tuple, str]] = {
    "n": ((None, 1), "one answer per request"),
    "presence_penalty": ((None, 0), "decoding without penalties"),
    "frequency_penalty": ((None, 0), "decoding without penalties"),
    "logit_bias": ((None, {}), "decoding without logit bias"),
    "logprobs": ((None, False), "no log probabilities are returned"),
    "top_logprobs": ((None, 0), "no log probabilities are returned"),
    "stop": ((None, []), "answers end at the end of the turn or at max_tokens"),
    "tools": ((None, []), "no tool calls"),
    "tool_choice": ((None, "none"), "no tool calls"),
    "parallel_tool_calls": ((None,), "no tool calls"),
    "functions": ((None, []), "no tool calls"),
    "function_call": ((None, "none"), "no tool calls"),
    "response_format": ((None, {"type": "text"}), "answers are plain text"),
    "modalities": ((None, ["text"]), "answers are text"),
    "audio": ((None,), "answers are text"),
    "prediction": ((None,), "no predicted outputs"),
    "reasoning_effort": ((None,), "no reasoning model"),
    "web_search_options": ((None,), "no web search"),
    "store": ((None, False), "nothing is stored"),
    "metadata": ((None, {}), "nothing is stored"),
    "service_tier": ((None, "auto", "default"), "one service tier"),
}


def echo(value) -> str:
    """``value`` as JSON, cut to ``ECHO_CHARS`` characters: a refused value, repeated in its message."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS - 3] + "..."


def refused(message: str, at: str = "") -> PydanticCustomError:
    """A check of this module failing: ``message`` says what is wrong; ``describe`` puts the path of the value
    checked first, then ``at`` (the part of it at fault, e.g. ``[0].content``)."""
    return PydanticCustomError(REFUSED, "{message}", {"message": message, "at": at})


def _served(value, accepted: tuple) -> bool:
    """``value`` is one of ``accepted`` (0 is 0.0, but not false)."""
    return any(value == a and isinstance(value, bool) == isinstance(a, bool) for a in accepted)


# ---------------------------------------------------------------------------------------------- requests
class VideoURL(BaseModel):
    url: str  # file://, data:video/...;base64 or an id from POST /v1/videos (serve.videos.VideoStore.resolve)


class ImageURL(BaseModel):
    url: str  # file:// or data:image/...;base64 (serve.videos.VideoStore.resolve_image)


class ContentPart(BaseModel):
    """``{"type": "text", "text": ...}``, ``{"type": "video_url", "video_url": {"url": ...}}`` or
    ``{"type": "image_url", "image_url": {"url": ...}}``."""

    type: Literal["text", "video_url", "image_url"]
    text: str | None = None
    video_url: VideoURL | None = None
    image_url: ImageURL | None = None

    @model_validator(mode="after")
    def _has_its_field(self) -> ContentPart:
        if getattr(self, self.type) is None:
            raise refused("expected a text part, a video_url part "
                          "({\"type\": \"video_url\", \"video_url\": {\"url\": ...}}) or image_url parts")
        return self


class Message(BaseModel):
    """A message: its content is text (read as one text part) or a list of parts."""

    role: str | None = None
    content: list[ContentPart] | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _text_is_a_part(cls, content):
        return [{"type": "text", "text": content}] if isinstance(content, str) else content


class StreamOptions(BaseModel):
    include_usage: bool | None = None  # the last chunk carries the usage


# The fields of SERVED_VALUES: any JSON, checked against the table by ChatCompletionRequest._served_value.
_ServedFields = create_model("_ServedFields", **{name: (Any, None) for name in SERVED_VALUES})
TokenLimit = Annotated[int, Strict(), Field(ge=1, le=MAX_TOKENS_LIMIT)]
Temperature = Annotated[float, Strict(), Field(ge=0, le=MAX_TEMPERATURE, allow_inf_nan=False)]  # 0: greedy
TopP = Annotated[float, Strict(), Field(gt=0, le=1, allow_inf_nan=False)]
Seed = Annotated[int, Strict(), Field(ge=SEED_MIN, le=SEED_MAX)]


class ChatCompletionRequest(_ServedFields):
    """``POST /v1/chat/completions``: one user turn, a question and a video. Any other field is refused."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None  # the served model's id (else a 404, checked where the id is known)
    messages: Annotated[list[Message], Field(min_length=1)]
    max_tokens: TokenLimit | None = None
    max_completion_tokens: TokenLimit | None = None  # OpenAI's newer name; wins over max_tokens
    stream: Annotated[bool, Strict()] | None = None
    stream_options: StreamOptions | None = None
    temperature: Temperature | None = None  # absent: greedy (the model's own decoding, as the benchmarks answer)
    top_p: TopP | None = None
    seed: Seed | None = None
    user: str | None = None  # these three identify a caller in logs: nothing to do here
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None

    @field_validator(*SERVED_VALUES)
    @classmethod
    def _served_value(cls, value, info: ValidationInfo):
        accepted, why = SERVED_VALUES[info.field_name]
        if not _served(value, accepted):
            raise refused(f"{echo(value)} is not supported: {why} (accepted: "
                          f"{' or '.join(echo(a) for a in accepted)})")
        return value

    @field_validator("messages")
    @classmethod
    def _one_question_about_one_video(cls, messages: list[Message]):
        """One user turn (VLM-3R has its own system prompt), its content a question and exactly one video."""
        roles = [m.role for m in messages]
        if roles != ["user"]:
            raise refused(f"VLM-3R answers one user turn (its own system prompt, no history); got roles "
                          f"{echo(roles)}")
        content = messages[0].content
        if content is None:
            raise refused("expected text or a list of parts", "[0].content")
        videos = sum(part.type == "video_url" for part in content)
        images = sum(part.type == "image_url" for part in content)
        if (videos, bool(images)) not in ((1, False), (0, True)):
            raise refused(f"needs exactly one video_url part or one or more image_url parts, got {videos} "
                          f"video_url and {images} image_url", "[0].content")
        text = "\n".join(part.text for part in content if part.type == "text")
        if not text.strip():
            raise refused("needs a text part with the question", "[0].content")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise refused("the text is not valid Unicode (a lone surrogate)", "[0].content") from None
        return messages

    @property
    def question(self) -> str:
        return "\n".join(p.text for p in self.messages[0].content if p.type == "text")

    @property
    def video_url(self) -> str | None:
        return next((p.video_url.url for p in self.messages[0].content if p.type == "video_url"), None)

    @property
    def image_urls(self) -> list[str]:
        """The image_url parts' URLs, in the message's order (the images' order)."""
        return [p.image_url.url for p in self.messages[0].content if p.type == "image_url"]

    @property
    def max_new_tokens(self) -> int:
        limit = self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens
        return MAX_NEW_TOKENS if limit is None else limit

    @property
    def sampling(self) -> Sampling | None:
        """How the answer is decoded: None (greedy) unless ``temperature`` is above 0. An absent temperature is
        greedy, unlike OpenAI's default of 1: answers are then the model's own, as the benchmarks get them."""
        if not self.temperature:
            return None
        return Sampling(self.temperature, 1.0 if self.top_p is None else self.top_p, self.seed)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

CHECKED_FIELDS = frozenset(ChatCompletionRequest.model_fields) - SERVED_VALUES.keys()  # any value their type takes


def describe(error: dict) -> tuple[str, str | None]:
    """The message and ``param`` (the top-level field) of one of pydantic's errors about a chat request."""
    loc = list(error["loc"][1:] if error["loc"][:1] == ("body",) else error["loc"])  # FastAPI's prefix
    if not loc:
        return "the body must be a JSON object", None
    field = str(loc[0])
    if error["type"] == "extra_forbidden":
        return f"{field}: not supported by this server (it answers one question about one video)", field
    where = field + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc[1:])
    if error["type"] == REFUSED:
        return f"{where}{error['ctx']['at']}: {error['msg']}", field
    if error["type"] == "missing":  # its input is the object it is missing from
        return f"{where}: {error['msg']}", field
    return f"{where}: {error['msg']} (got {echo(error.get('input'))})", field


# ---------------------------------------------------------------------------------------------- answers
class Usage(BaseModel):
    prompt_tokens: int  # LLM positions: the video's embeddings count
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, answer: Answer) -> Usage:
        return cls(prompt_tokens=answer.prompt_tokens, completion_tokens=len(answer.tokens),
                   total_tokens=answer.prompt_tokens + len(answer.tokens))


def finish_reason(answer: Answer) -> Literal["stop", "length"]:
    return "length" if answer.truncated else "stop"


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class Delta(BaseModel):
    """A stream's piece: the role (first chunk), text, or nothing (the last chunk); absent fields are not sent."""

    role: Literal["assistant"] | None = None
    content: str | None = None

    @model_serializer(mode="wrap")
    def _given(self, handler) -> dict:
        return {key: value for key, value in handler(self).items() if value is not None}


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a stream; ``usage`` only on the last, when ``stream_options.include_usage``."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None

    @model_serializer(mode="wrap")
    def _usage_when_given(self, handler) -> dict:
        data = handler(self)
        if data["usage"] is None:
            del data["usage"]
        return data


# ---------------------------------------------------------------------------------------------- other endpoints
class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "vlm3r"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class VideoObject(BaseModel):
    """``POST /v1/videos``: the id to name the video by in later requests."""

    id: str
    object: Literal["video"] = "video"
    bytes: int


class Health(BaseModel):
    """``GET /health``: the pipeline's counts (``Vlm3rPipeline.stats``) and the engine's."""

    status: Literal["ok"] = "ok"
    model: str
    encodings: int
    prefills: int
    cached_bytes: int
    cached_embeddings: int
    cached_prefixes: int
    queued: int
    requests: int
    batches: int
    largest_batch: int
    failures: int
    cancelled: int  # requests skipped or streams stopped because their client went away


# ---------------------------------------------------------------------------------------------- errors
class ErrorInfo(BaseModel):
    message: str
    type: str  # OpenAI's error type: invalid_request_error, not_found_error, ...
    param: str | None = None  # the request field at fault
    code: int  # the HTTP status


class ErrorResponse(BaseModel):
    error: ErrorInfo
