"""The benchmark prompt around a question (docs/design.md, data §7, §9.1): shared by training export and evaluation."""

from __future__ import annotations

from vlm3r.qa.record import QARecord
from vlm3r.qa.tasks import answer_kind

PRE_PROMPT = "These are frames of a video."
MCA_POST_PROMPT = "Answer with the option's letter from the given choices directly."
NA_POST_PROMPT = "Please answer the question using a single word or phrase."


def question_text(record: QARecord) -> str:
    """The text the model reads: options listed for multiple choice, a short-answer instruction for numbers."""
    if answer_kind(record.question_type) == "mca":
        return "\n".join([PRE_PROMPT, record.question, "Options:", *map(str, record.options), MCA_POST_PROMPT])
    return "\n".join([PRE_PROMPT, record.question, NA_POST_PROMPT])


def target_text(record: QARecord) -> str:
    """The answer the model should give: the letter for multiple choice, the value for numbers."""
    return str(record.mc_answer) if answer_kind(record.question_type) == "mca" else str(record.ground_truth)
