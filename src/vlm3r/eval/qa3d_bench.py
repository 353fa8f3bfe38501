"""ScanQA and SQA3D as data, and their public files read (docs/evaluation.md, "ScanQA and SQA3D").

Each benchmark is a row of ``QA3D_BENCHMARKS``: its question types in the reference's order, the prompts of the
reference's evaluation scripts (``--prompt``; the default named), the answer length those scripts allow, and the
question file layouts it reads:

- ScanQA: ``ScanQA_v1.0_{val,test_w_obj,test_wo_obj}.json``, a list of ``{question_id, scene_id, question,
  answers}`` (the test splits have no answers: a run writes predictions and scores nothing);
- SQA3D: the "llava-style" list the reference's scripts read (``id``, ``video`` "scannet/<scene>",
  ``conversations`` [human, gpt], ``metadata.question_type``), or SQA3D's own pair
  ``v1_balanced_questions_<split>_scannetv2.json`` + ``v1_balanced_sqa_annotations_<split>_scannetv2.json``
  (either may be given; the other is found beside it), turned into the same items as the reference's converter
  (Video-3D-LLM's ``process_sqa3d.py``) turns it: the main situation only, items in the annotations' order.

A question's video is ``<videos>/<scene_id>.mp4``, as the reference expects, else ``<videos>/scannet/<scene_id>.mp4``
(vlm3r's layout, where every dataset has its folder).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vlm3r.errors import InputError
from vlm3r.model.prompt import IMAGE_TOKEN, ReferenceQaPrompt
from vlm3r.utils.fileio import read_json, read_jsonl_objects

QA3D_MAX_NEW_TOKENS = 512  # tokens: the reference's ScanQA and SQA3D scripts let answers be this long

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
# ScanQA's question types in the order the reference prints them; SQA3D's as its converter names them.
SCANQA_TYPE_ORDER = ("Object", "Color", "Object nature", "Place", "Number", "Other")
SQA3D_TYPE_ORDER = (*SQA3D_TYPES, SQA3D_OTHER)

SIMPLY = "Answer the question simply."  # model_scanqa_preload.py's line after the question
# model_sqa3d_preload.py's --extra-prompt default, placed before the time instruction
SPATIAL_LEAD = ("The video captures 3D spatial information of a scene. Please focus on the spatial relationships "
                "in the video and answer the following questions.")
# What Video-3D-LLM's converter appends to every SQA3D question (already inside the llava-style files).
SQA3D_SUFFIX = "Answer the question using a single word or phrase."
SQA3D_QUESTIONS, SQA3D_ANNOTATIONS = "v1_balanced_questions_", "v1_balanced_sqa_annotations_"


class Qa3dFileError(InputError):
    """A ScanQA or SQA3D question or prediction file that cannot be read; the message names the file and field."""


@dataclass(frozen=True)
class Qa3dQuestion:
    """One question: ``text`` is what follows the time instruction in the prompt (ScanQA: the question; SQA3D:
    the human turn without ``<image>``: situation, question and the converter's instruction, with its leading
    space), ``answers`` the reference answers (empty where the split's are not public)."""

    id: str
    scene_id: str
    text: str
    answers: tuple[str, ...]
    question_type: str


@dataclass(frozen=True)
class Qa3dBenchmark:
    """A 3D question-answering benchmark: ``prompts`` by ``--prompt`` name, each with the reference script it
    reproduces (``scripts``)."""

    name: str
    types: tuple[str, ...]
    prompts: dict[str, ReferenceQaPrompt]
    scripts: dict[str, str]
    default_prompt: str
    max_new_tokens: int = QA3D_MAX_NEW_TOKENS
    metrics: tuple[str, ...] = field(default=("EM1",))

    def prompt(self, name: str | None) -> ReferenceQaPrompt:
        """The prompt called ``name`` (None: the default); an unknown name is refused, listing the known."""
        name = self.default_prompt if name is None else name
        if name not in self.prompts:
            raise InputError(f"--prompt: {self.name} has no prompt {name!r} (it has "
                             f"{', '.join(f'{k} ({v})' for k, v in self.scripts.items())})")
        return self.prompts[name]


SCANQA = Qa3dBenchmark(
    "scanqa", SCANQA_TYPE_ORDER,
    prompts={"preload": ReferenceQaPrompt(instruction=SIMPLY), "plain": ReferenceQaPrompt()},
    scripts={"preload": "llava/eval/model_scanqa_preload.py, the newest", "plain": "llava/eval/model_scanqa.py"},
    default_prompt="preload",
    metrics=("EM1", "EM1_refined", "Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr"),
)
# The two SQA3D scripts build different prompts; the default is that of model_sqa3d_preload.py, the script of
# the same commit as ScanQA's (only a preload script runs ScanQA there), with its own default lead line.
SQA3D = Qa3dBenchmark(
    "sqa3d", SQA3D_TYPE_ORDER,
    prompts={"preload": ReferenceQaPrompt(lead=SPATIAL_LEAD), "plain": ReferenceQaPrompt()},
    scripts={"preload": "llava/eval/model_sqa3d_preload.py, the newest", "plain": "llava/eval/model_sqa3d.py"},
    default_prompt="preload",
)
QA3D_BENCHMARKS = {b.name: b for b in (SCANQA, SQA3D)}


# ---------------------------------------------------------------------- question types
def scanqa_question_type(question: str) -> str:
    """ScanQA's type of a question: the first of ``SCANQA_TYPES`` whose prefix starts it, case aside."""
    lowered = question.lower()
    return next((name for name, prefixes in SCANQA_TYPES if lowered.startswith(prefixes)), SCANQA_OTHER)


def sqa3d_question_type(question: str) -> str:
    """SQA3D's type of a question, as its converter gives it: the raw first characters, case aside."""
    lowered = question.lstrip().lower()
    return next((name for name in SQA3D_TYPES if lowered.startswith(name)), SQA3D_OTHER)


# ---------------------------------------------------------------------- fields
def _field(item: dict, name: str, kinds: type | tuple[type, ...], where: str):
    """``item[name]``, refused (naming ``where`` and the field) when absent or of another type."""
    if not isinstance(item, dict):
        raise Qa3dFileError(f"{where}: expected a JSON object, found {type(item).__name__}")
    if name not in item:
        raise Qa3dFileError(f"{where}: no {name!r} field")
    value = item[name]
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise Qa3dFileError(f"{where}: {name!r} has the wrong type ({type(value).__name__}: {value!r})")
    return value


def _text_list(item: dict, name: str, where: str) -> tuple[str, ...]:
    values = _field(item, name, list, where)
    if not values or not all(isinstance(v, str) for v in values):
        raise Qa3dFileError(f"{where}: {name!r} must be a non-empty list of strings, got {values!r}")
    return tuple(values)


# ---------------------------------------------------------------------- ScanQA
def read_scanqa(path: Path) -> list[Qa3dQuestion]:
    """ScanQA's own file: ``answers`` for val (and train), none for the test splits (refused when only some
    questions have them)."""
    rows = read_json(path, Qa3dFileError, list, "ScanQA questions, ScanQA_v1.0_<split>.json")
    questions = []
    for k, row in enumerate(rows):
        where = f"{path}: item {k}"
        if isinstance(row, dict) and "conversations" in row:
            raise Qa3dFileError(f"{where}: a llava-style item; ScanQA is read from its own files, "
                                "ScanQA_v1.0_<split>.json, as the reference's ScanQA script reads them")
        question = _field(row, "question", str, where)
        answers = _text_list(row, "answers", where) if "answers" in row else ()
        questions.append(Qa3dQuestion(str(_field(row, "question_id", (str, int), where)),
                                      _field(row, "scene_id", str, where), question, answers,
                                      scanqa_question_type(question)))
    answered = sum(bool(q.answers) for q in questions)
    if 0 < answered < len(questions):
        missing = next(q.id for q in questions if not q.answers)
        raise Qa3dFileError(f"{path}: {len(questions) - answered} of {len(questions)} questions have no 'answers' "
                            f"(e.g. {missing}): a file has answers for all (val) or for none (test)")
    return questions


# ---------------------------------------------------------------------- SQA3D
def read_sqa3d_llava(path: Path, rows: list) -> list[Qa3dQuestion]:
    """The llava-style list the reference's SQA3D scripts read: the question type as the file gives it."""
    questions = []
    for k, row in enumerate(rows):
        where = f"{path}: item {k}"
        turns = _field(row, "conversations", list, where)
        if len(turns) < 2:
            raise Qa3dFileError(f"{where}: 'conversations' needs the human turn and the answer, got {len(turns)}")
        human = _field(turns[0], "value", str, f"{where}: conversations[0]")
        if IMAGE_TOKEN not in human:
            raise Qa3dFileError(f"{where}: conversations[0] has no {IMAGE_TOKEN} (not an SQA3D llava-style item)")
        answer = _field(turns[1], "value", str, f"{where}: conversations[1]")
        kind = _field(_field(row, "metadata", dict, where), "question_type", str, f"{where}: metadata")
        if kind not in SQA3D_TYPE_ORDER:
            raise Qa3dFileError(f"{where}: metadata.question_type {kind!r} is not one of SQA3D's "
                                f"{', '.join(SQA3D_TYPE_ORDER)}")
        scene = _field(row, "video", str, where).split("/")[-1]
        questions.append(Qa3dQuestion(str(_field(row, "id", (str, int), where)), scene,
                                      human.replace(IMAGE_TOKEN, ""), (answer,), kind))
    return questions


def sqa3d_pair(path: Path) -> tuple[Path, Path]:
    """(questions file, annotations file) of SQA3D's own pair, from either one's path."""
    name = path.name
    if name.startswith(SQA3D_QUESTIONS):
        return path, path.with_name(SQA3D_ANNOTATIONS + name[len(SQA3D_QUESTIONS):])
    if name.startswith(SQA3D_ANNOTATIONS):
        return path.with_name(SQA3D_QUESTIONS + name[len(SQA3D_ANNOTATIONS):]), path
    raise Qa3dFileError(f"{path}: an SQA3D file is a JSON list (llava-style) or one of the pair "
                        f"{SQA3D_QUESTIONS}<split>_scannetv2.json / {SQA3D_ANNOTATIONS}<split>_scannetv2.json")


def read_sqa3d_pair(path: Path) -> list[Qa3dQuestion]:
    """SQA3D's own pair of files, as the reference's converter turns them into items (docstring above)."""
    questions_path, annotations_path = sqa3d_pair(path)
    by_id = {}
    listed = _field(read_json(questions_path, Qa3dFileError, dict, "SQA3D questions"), "questions", list,
                    str(questions_path))
    for k, row in enumerate(listed):
        by_id[_field(row, "question_id", (int, str), f"{questions_path}: questions[{k}]")] = row
    annotations = _field(read_json(annotations_path, Qa3dFileError, dict, "SQA3D annotations"), "annotations",
                         list, str(annotations_path))
    questions = []
    for k, row in enumerate(annotations):
        where = f"{annotations_path}: annotations[{k}]"
        qid = _field(row, "question_id", (int, str), where)
        if qid not in by_id:
            raise Qa3dFileError(f"{where}: question_id {qid!r} is not in {questions_path}")
        asked = by_id[qid]
        source = f"{questions_path}: question {qid!r}"
        question, situation = _field(asked, "question", str, source), _field(asked, "situation", str, source)
        answers = _field(row, "answers", list, where)
        if len(answers) != 1:
            raise Qa3dFileError(f"{where}: 'answers' must hold one answer (as the converter asserts), got "
                                f"{len(answers)}")
        answer = _field(answers[0], "answer", str, f"{where}: answers[0]")
        text = f" {situation} {question} {SQA3D_SUFFIX}"  # the converter's human turn without "<image>"
        questions.append(Qa3dQuestion(str(qid), _field(row, "scene_id", str, where), text, (answer,),
                                      sqa3d_question_type(question)))
    return questions


def read_sqa3d(path: Path) -> list[Qa3dQuestion]:
    """SQA3D questions from a llava-style list or from SQA3D's own pair (either file of it)."""
    if path.name.startswith((SQA3D_QUESTIONS, SQA3D_ANNOTATIONS)):
        return read_sqa3d_pair(path)
    rows = read_json(path, Qa3dFileError, None, "SQA3D questions")
    if isinstance(rows, dict):
        sqa3d_pair(path)  # refused with the names the pair must have
    if not isinstance(rows, list):
        raise Qa3dFileError(f"{path}: expected a JSON list of llava-style SQA3D items")
    return read_sqa3d_llava(path, rows)


READERS = {"scanqa": read_scanqa, "sqa3d": read_sqa3d}


def load_qa3d_questions(bench: Qa3dBenchmark, path: Path | str) -> list[Qa3dQuestion]:
    """The questions of ``bench`` in ``path``: none missing, ids unique."""
    path = Path(path)
    questions = READERS[bench.name](path)
    if not questions:
        raise Qa3dFileError(f"{path}: no {bench.name} questions in it")
    seen: set[str] = set()
    repeated = [q.id for q in questions if q.id in seen or seen.add(q.id)]
    if repeated:
        raise Qa3dFileError(f"{path}: question ids repeat: {', '.join(repeated[:20])}")
    return questions


def qa3d_video(question: Qa3dQuestion, root: Path) -> Path:
    """``root/<scene_id>.mp4`` (the reference's layout), else ``root/scannet/<scene_id>.mp4`` if that exists."""
    flat = root / f"{question.scene_id}.mp4"
    nested = root / "scannet" / f"{question.scene_id}.mp4"
    return nested if not flat.exists() and nested.exists() else flat


# ---------------------------------------------------------------------- predictions
# The keys a prediction line may carry: vlm3r's, the reference ScanQA script's, the reference SQA3D script's.
PREDICTION_KEYS = (("id", "prediction"), ("question_id", "text"), ("sample_id", "pred_response"))


def read_qa3d_predictions(path: Path | str) -> list[tuple[str, str]]:
    """(question id as text, answer) per line, in the file's order: vlm3r's ``{"id", "prediction"}`` lines, or
    the reference scripts' answer files (``question_id``/``text``, ``sample_id``/``pred_response``), so that the
    reference's own answers can be scored here. Repeats are kept (scoring refuses them, naming the ids)."""
    rows = []
    for number, row in read_jsonl_objects(path, Qa3dFileError):
        keys = next((pair for pair in PREDICTION_KEYS if all(k in row for k in pair)), None)
        if keys is None:
            raise Qa3dFileError(f"{path}: line {number}: expected one of "
                                + ", ".join(f'{{"{a}", "{b}"}}' for a, b in PREDICTION_KEYS))
        answer = row[keys[1]]
        if not isinstance(answer, str):
            raise Qa3dFileError(f"{path}: line {number}: {keys[1]!r} must be text, got {answer!r}")
        rows.append((str(row[keys[0]]), answer))
    return rows
