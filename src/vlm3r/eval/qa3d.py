"""Exact-match scoring of the 3D question-answering benchmarks, ScanQA and SQA3D, as the reference scores them
(``llava/eval/scanqa_evaluator.py``, ``eval_sqa3d.py``; docs/evaluation.md, "ScanQA and SQA3D").

Both clean the prediction and every reference answer with LEO's ``clean_answer`` (lower case, punctuation out,
typos, number words, articles), then compare: SQA3D by equality with its one answer; ScanQA by EM@1 (equal to one of
its answers) and refined EM (also when one, without spaces, contains the other). The question type of a ScanQA
question and of an SQA3D question comes from how the question starts. What the reference does not check, vlm3r
refuses: a prediction file that answers a question twice, or a question nobody answered, is an error naming it (the
reference counts a repeat twice and scores a partial run as if it were whole).

The captioning metrics of ScanQA (BLEU, METEOR, ROUGE-L, CIDEr) are not here yet: see docs/evaluation.md.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from vlm3r.errors import InputError

# Whole-word typo fixes, in the reference's order (``tv`` becomes upper case there, and so here).
TYPOS: tuple[tuple[str, str], ...] = (
    ("letf", "left"), ("let", "left"), ("tehre", "there"), ("rigth", "right"), ("rght", "right"),
    ("behine", "behind"), ("tv", "TV"), ("chai", "chair"), ("wasing", "washing"), ("waslked", "walked"),
    ("oclock", "o'clock"))
# Whole-word numbers written out: 0 (and "none") to 20, and 23, as the reference lists them.
NUMBER_WORDS: tuple[tuple[str, str], ...] = (
    ("0", "zero"), ("none", "zero"), ("1", "one"), ("2", "two"), ("3", "three"), ("4", "four"), ("5", "five"),
    ("6", "six"), ("7", "seven"), ("8", "eight"), ("9", "nine"), ("10", "ten"), ("11", "eleven"), ("12", "twelve"),
    ("13", "thirteen"), ("14", "fourteen"), ("15", "fifteen"), ("16", "sixteen"), ("17", "seventeen"),
    ("18", "eighteen"), ("19", "nineteen"), ("20", "twenty"), ("23", "twenty-three"))
ARTICLES = ("a", "an", "the")  # dropped before a word, in this order

# ScanQA's question types: the first rule whose prefix starts the lower-cased question wins; the rest are "Other".
SCANQA_TYPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Color", ("what color", "what is the color")),
    ("Object nature", ("what type", "what shape", "what kind")),
    ("Place", ("where is",)),
    ("Number", ("how many",)),
    ("Object", ("what is",)),
)
SCANQA_OTHER = "Other"
# SQA3D's question types: the question's first characters, case aside, after leading spaces ("Isn't" is "is").
SQA3D_TYPES = ("what", "is", "how", "can", "which")
SQA3D_OTHER = "others"


def clean_answer(text: str) -> str:
    """LEO's answer normalisation, step by step as the reference applies it (docs/evaluation.md lists the steps).
    It deletes every character but letters, digits, spaces, commas, apostrophes, hyphens and colons, so "3.5"
    becomes "35", and it does not strip the spaces that deletion leaves ("chair ." becomes "chair ")."""
    text = text.lower()
    text = re.sub(r"[ ]+$", "", text)
    text = re.sub(r"^[ ]+", "", text)
    text = re.sub(r" {2,}", " ", text)
    text = re.sub(r"\.[ ]{2,}", ". ", text)
    text = re.sub(r"[^a-zA-Z0-9,'\s\-:]+", "", text)
    for wrong, right in TYPOS:
        text = re.sub(rf"\b{wrong}\b", right, text)
    text = re.sub(r"\bo'[ ]+clock\b", "o'clock", text)
    for number, word in NUMBER_WORDS:
        text = re.sub(rf"\b{number}\b", word, text)
    text = re.sub(r"\b([a-zA-Z]+)([0-9])\b", r"\g<1>", text)  # "mat2" -> "mat"
    for article in ARTICLES:
        text = re.sub(rf"\b{article}\b ([a-zA-Z]+)", r"\g<1>", text)
    return re.sub(r"\bbackwards\b", "backward", text)


def answer_match(prediction: str, answers: list[str]) -> tuple[bool, bool]:
    """(EM@1, refined EM) of a cleaned prediction against cleaned answers: EM@1 when it is one of them; refined
    also when, spaces removed, it contains one or one contains it (so an empty prediction always counts)."""
    exact = prediction in answers
    bare = "".join(prediction.split())
    refined = exact or any(bare in "".join(a.split()) or "".join(a.split()) in bare for a in answers)
    return exact, refined


def scanqa_question_type(question: str) -> str:
    lowered = question.lower()
    return next((name for name, prefixes in SCANQA_TYPES if lowered.startswith(prefixes)), SCANQA_OTHER)


def sqa3d_question_type(question: str) -> str:
    lowered = question.lstrip().lower()
    return next((name for name in SQA3D_TYPES if lowered.startswith(name)), SQA3D_OTHER)


@dataclass(frozen=True)
class ExactMatchScores:
    """Scores in points (0-100), overall and per question type (types in first-seen order), with the counts."""

    overall: dict[str, float]
    per_type: dict[str, dict[str, float]]
    counts: dict[str, int]


def _matched(predictions: list[tuple[str, str]], known: set[str], source: str) -> dict[str, str]:
    """{question id: prediction}, refusing a repeated id, an unknown id and a question left unanswered."""
    repeated = sorted(qid for qid, n in Counter(qid for qid, _ in predictions).items() if n > 1)
    if repeated:
        raise InputError(f"{source}: questions answered more than once: {', '.join(repeated[:20])}")
    answered = dict(predictions)
    unknown = sorted(set(answered) - known)
    if unknown:
        raise InputError(f"{source}: answers to questions not in the question file: {', '.join(unknown[:20])}")
    missing = sorted(known - set(answered))
    if missing:
        raise InputError(f"{source}: {len(missing)} of {len(known)} questions have no answer (an incomplete run): "
                         f"{', '.join(missing[:20])}")
    return answered


def _means(rows: list[tuple[str, dict[str, bool]]]) -> ExactMatchScores:
    """Per-metric means in points over all rows and over each type's rows."""
    def mean(selected: list[dict[str, bool]]) -> dict[str, float]:
        return {name: 100.0 * sum(r[name] for r in selected) / len(selected) for name in selected[0]}

    types = list(dict.fromkeys(t for t, _ in rows))
    return ExactMatchScores(mean([r for _, r in rows]),
                            {t: mean([r for k, r in rows if k == t]) for t in types},
                            {t: sum(k == t for k, _ in rows) for t in types})


def score_scanqa(questions: dict[str, tuple[str, list[str]]], predictions: list[tuple[str, str]],
                 source: str = "predictions") -> ExactMatchScores:
    """EM@1 and refined EM (``EM1``, ``EM1_refined``) of ScanQA answers, overall and per question type.

    Args:
        questions: question id -> (question text, its reference answers), as ScanQA's files give them.
        predictions: (question id, predicted text) in the prediction file's order.
        source: the prediction file's name, for errors.
    """
    answered = _matched(predictions, set(questions), source)
    rows = []
    for qid, (question, answers) in questions.items():
        exact, refined = answer_match(clean_answer(answered[qid]), [clean_answer(a) for a in answers])
        rows.append((scanqa_question_type(question), {"EM1": exact, "EM1_refined": refined}))
    return _means(rows)


def score_sqa3d(questions: dict[str, tuple[str, str]], predictions: list[tuple[str, str]],
                source: str = "predictions") -> ExactMatchScores:
    """SQA3D exact match (``EM1``: the cleaned prediction equals the cleaned answer), overall and per type.

    Args:
        questions: question id -> (question text, its answer).
        predictions: (question id, predicted text) in the prediction file's order.
        source: the prediction file's name, for errors.
    """
    answered = _matched(predictions, set(questions), source)
    rows = [(sqa3d_question_type(question), {"EM1": clean_answer(answered[qid]) == clean_answer(answer)})
            for qid, (question, answer) in questions.items()]
    return _means(rows)
