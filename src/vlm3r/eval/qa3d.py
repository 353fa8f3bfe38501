"""Scoring of the 3D question-answering benchmarks, ScanQA and SQA3D, as the reference scores them
(``llava/eval/scanqa_evaluator.py``, ``eval_sqa3d.py``; docs/evaluation.md, "ScanQA and SQA3D").

Both clean the prediction and every reference answer with LEO's ``clean_answer`` (lower case, punctuation out,
typos, number words, articles), then compare: SQA3D by equality with its one answer; ScanQA by EM@1 (equal to one of
its answers) and refined EM (also when one, without spaces, contains the other). The question type of a ScanQA
question and of an SQA3D question comes from how the question starts. What the reference does not check, vlm3r
refuses: a prediction file that answers a question twice, or a question nobody answered, is an error naming it (the
reference counts a repeat twice and scores a partial run as if it were whole).

ScanQA's captioning metrics (BLEU, METEOR, ROUGE-L, CIDEr) are computed by ``eval.captions`` on the cleaned texts.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from vlm3r.errors import InputError
from vlm3r.eval.captions import count_line_breaks
from vlm3r.eval.qa3d_bench import (SCANQA_OTHER, SCANQA_TYPES, SQA3D_OTHER, SQA3D_TYPES,  # noqa: F401
                                   Qa3dBenchmark, Qa3dQuestion, scanqa_question_type, sqa3d_question_type)

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


@dataclass
class Qa3dReport:
    """A ScanQA or SQA3D score: metrics in points (0-100; CIDEr may pass 100) under the reference's names, overall
    and per question type (the benchmark's order, types present only), with the counts; ``absent``: metrics the
    reference computes that were not (SPICE unless asked); ``multiline``: predictions with a line break that the
    reference's tokenizer would take for the end of a caption (``eval.captions.count_line_breaks``), shifting every
    later answer onto another question's references (vlm3r scores each as one line)."""

    benchmark: str
    n: int
    overall: dict[str, float]
    per_type: dict[str, dict[str, float]]
    counts: dict[str, int]
    absent: list[str] = field(default_factory=list)
    prompt: str | None = None
    multiline: int = 0

    def to_json(self) -> dict:
        return asdict(self)


def matched_predictions(predictions: list[tuple[str, str]], known: list[str], source: str) -> dict[str, str]:
    """{question id: prediction} in the prediction file's order, refusing a repeated id, an unknown id and a
    question left unanswered (``known``: the questions' ids)."""
    repeated = sorted(qid for qid, n in Counter(qid for qid, _ in predictions).items() if n > 1)
    if repeated:
        raise InputError(f"{source}: questions answered more than once: {', '.join(repeated[:20])}")
    answered = dict(predictions)
    unknown = sorted(set(answered) - set(known))
    if unknown:
        raise InputError(f"{source}: answers to questions not in the question file: {', '.join(unknown[:20])}")
    missing = [qid for qid in known if qid not in answered]
    if missing:
        raise InputError(f"{source}: {len(missing)} of {len(known)} questions have no answer (an incomplete run): "
                         f"{', '.join(missing[:20])}")
    return answered


def _points(values: list[bool]) -> float:
    """The share of true values in points, computed as the reference does (the fraction, then x100: the other order
    can differ in the last bit)."""
    return sum(values) / len(values) * 100


def score_qa3d(bench: Qa3dBenchmark, questions: list[Qa3dQuestion], predictions: list[tuple[str, str]],
               source: str = "predictions", captions: Callable | None = None) -> Qa3dReport:
    """Score answers as the reference does: each prediction and answer cleaned (``clean_answer``); ScanQA's EM@1
    and refined EM, SQA3D's exact match; and, for a benchmark with captioning metrics, ``captions``
    (``eval.captions.CaptionScorer.grouped_scores``) on the whole set and on each type's items as their own
    corpus, items in the prediction file's order (the reference keys them by that position).

    Args:
        bench: the benchmark (``eval.qa3d_bench``).
        questions: its questions, every one with its answers.
        predictions: (question id, predicted text) in the prediction file's order.
        source: the prediction file's name, for errors.
        captions: the captioning scorer; needed when ``bench`` has captioning metrics.
    """
    by_id = {q.id: q for q in questions}
    answered = matched_predictions(predictions, list(by_id), source)
    kinds, cleaned, references, exact, refined = [], [], [], [], []  # per item, in the file's order
    for qid, text in answered.items():
        question = by_id[qid]
        prediction, answers = clean_answer(text), [clean_answer(a) for a in question.answers]
        hit, near = answer_match(prediction, answers)
        kinds.append(question.question_type)
        cleaned.append(prediction)
        references.append([" ".join(a.split("\n")).strip() for a in answers])  # as the reference passes them
        exact.append(hit)
        refined.append(near)
    types = [t for t in bench.types if t in kinds]
    groups = {"overall": list(range(len(kinds))), **{t: [i for i, k in enumerate(kinds) if k == t] for t in types}}
    scores = {name: {"EM1": _points([exact[i] for i in members])} for name, members in groups.items()}
    if "EM1_refined" in bench.metrics:
        for name, members in groups.items():
            scores[name]["EM1_refined"] = _points([refined[i] for i in members])
    if set(bench.metrics) - {"EM1", "EM1_refined"}:
        if captions is None:
            raise ValueError(f"captions: {bench.name} needs a captioning scorer")
        for name, found in captions(cleaned, references, groups).items():
            scores[name].update({metric: value * 100 for metric, value in found.items()})
    overall = scores.pop("overall")
    return Qa3dReport(bench.name, len(kinds), overall, scores, {t: len(groups[t]) for t in types},
                      multiline=count_line_breaks(cleaned))
