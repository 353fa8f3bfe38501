"""ScanQA and SQA3D exact-match scoring: every step of the answer cleaning on hand-worked cases, both EM
definitions, the question types and the scores, and what the reference lets through and vlm3r refuses."""

import pytest

from vlm3r.errors import InputError
from vlm3r.eval.qa3d import answer_match, clean_answer, scanqa_question_type, score_qa3d, sqa3d_question_type
from vlm3r.eval.qa3d_bench import SCANQA, SQA3D, Qa3dQuestion


def scanqa(qid: str, question: str, answers: list[str]) -> Qa3dQuestion:
    return Qa3dQuestion(qid, "scene0000_00", question, tuple(answers), scanqa_question_type(question))


def sqa3d(qid: str, question: str, answer: str) -> Qa3dQuestion:
    return Qa3dQuestion(qid, "scene0000_00", f" I sit on the bed. {question} Answer the question using a single "
                        "word or phrase.", (answer,), sqa3d_question_type(question))


class RecordingCaptions:
    """Stands for the captioning scorer: records the corpus and the sets it is given and scores each set by its size
    (so that each set's result is told apart)."""

    def __init__(self):
        self.calls = []

    def __call__(self, predictions, references, groups):
        self.calls.append((predictions, references, groups))
        return {name: {"CIDEr": len(members) / 100} for name, members in groups.items()}


@pytest.mark.parametrize("raw, cleaned", [
    ("  The Chair.  ", "chair"),                      # lower, spaces stripped, "." deleted, article dropped
    ("3.5 meters", "35 meters"),                      # the dot goes, the digits join
    ("chair .", "chair "),                            # the space before a deleted character stays
    ("brown  and   white", "brown and white"),        # runs of spaces collapse
    ("Café’s", "cafs"),                               # non-ASCII deleted (the ç and ’ rules come too late)
    ("to the letf", "to left"),                       # typo, then the article before a word
    ("let side", "left side"),
    ("tv stand", "TV stand"),                         # upper case, as the reference writes it
    ("tehre rigth rght behine chai wasing waslked", "there right right behind chair washing walked"),
    ("3 oclock", "three o'clock"),
    ("o'   clock", "o'clock"),                        # spaces collapse to one, then the two words join
    ("2 chairs", "two chairs"),
    ("none", "zero"),
    ("0 or 20 or 23 or 21", "zero or twenty or twenty-three or 21"),  # 21 is not in the list
    ("mat2", "mat"),                                  # a letter word loses one trailing digit
    ("no12", "no12"),                                 # not two
    ("an apple", "apple"),
    ("a", "a"),                                       # an article with no word after it stays
    ("under the", "under the"),
    ("walk backwards", "walk backward"),
    ("left, right: up-down", "left, right: up-down"),  # commas, colons and hyphens are kept
])
def test_clean_answer(raw, cleaned):
    assert clean_answer(raw) == cleaned


def test_answer_match_exact_and_refined():
    assert answer_match("brown", ["brown", "dark brown"]) == (True, True)
    assert answer_match("dark brown chair", ["brown"]) == (False, True)       # the prediction contains an answer
    assert answer_match("brown", ["dark brown"]) == (False, True)             # an answer contains the prediction
    assert answer_match("blackchair", ["black chair"]) == (False, True)       # spaces removed
    assert answer_match("blue", ["brown", "black"]) == (False, False)
    assert answer_match("", ["brown"]) == (False, True)                       # the reference's caveat


@pytest.mark.parametrize("question, kind", [
    ("What color is the chair?", "Color"), ("What is the color of the desk?", "Color"),
    ("What type of table is it?", "Object nature"), ("what shape is the rug?", "Object nature"),
    ("What kind of chair?", "Object nature"), ("Where is the lamp?", "Place"), ("How many chairs?", "Number"),
    ("What is on the table?", "Object"), ("Where are the pillows?", "Other"), ("Which door is open?", "Other"),
])
def test_scanqa_question_types(question, kind):
    assert scanqa_question_type(question) == kind


@pytest.mark.parametrize("question, kind", [
    ("  Isn't the door open?", "is"), ("What is in front of me?", "what"), ("How many chairs?", "how"),
    ("Can I sit down?", "can"), ("Which way should I go?", "which"), ("Could I sit?", "others"),
    ("Is there a lamp?", "is"), ("Am I facing the bed?", "others"),
])
def test_sqa3d_question_types(question, kind):
    assert sqa3d_question_type(question) == kind


def test_scanqa_scores_by_hand():
    questions = [scanqa("q1", "What color is the chair?", ["brown", "dark brown"]),
                 scanqa("q2", "What color is the table?", ["white"]),
                 scanqa("q3", "Where is the lamp?", ["on the desk"]),
                 scanqa("q4", "How many chairs are there?", ["2"])]
    predictions = [("q3", "desk"), ("q1", "Brown."), ("q4", "two"), ("q2", "light white wood")]
    captions = RecordingCaptions()
    scores = score_qa3d(SCANQA, questions, predictions, captions=captions)
    # q1 exact (cleaned "brown"); q2 refined only ("lightwhitewood" contains "white"); q3 refined only ("desk" in
    # "ondesk", after "the" goes); q4 exact ("2" cleans to "two")
    assert scores.overall == {"EM1": 50.0, "EM1_refined": 100.0, "CIDEr": 4.0}
    assert scores.per_type == {"Color": {"EM1": 50.0, "EM1_refined": 100.0, "CIDEr": 2.0},
                               "Place": {"EM1": 0.0, "EM1_refined": 100.0, "CIDEr": 1.0},
                               "Number": {"EM1": 100.0, "EM1_refined": 100.0, "CIDEr": 1.0}}
    assert scores.counts == {"Color": 2, "Place": 1, "Number": 1}  # ScanQA's order: Color before Place
    # the captioning corpus: cleaned answers in the prediction file's order; the sets: all, then each type's own
    assert captions.calls == [
        (["desk", "brown", "two", "light white wood"], [["on desk"], ["brown", "dark brown"], ["two"], ["white"]],
         {"overall": [0, 1, 2, 3], "Color": [1, 3], "Place": [0], "Number": [2]})]


def test_answers_with_a_shifting_line_break_are_counted():
    """clean_answer keeps line breaks; "\\r" (unlike "\\n") makes the reference's tokenizer end the caption there
    and shift every later one onto another question: the report counts such answers."""
    questions = [scanqa("q1", "What is on the desk?", ["a lamp"]), scanqa("q2", "What is it?", ["chair"])]
    captions = RecordingCaptions()
    scores = score_qa3d(SCANQA, questions, [("q1", "A lamp.\rIt is white."), ("q2", "chair\nseat")],
                        captions=captions)
    assert captions.calls[0][:2] == (["lamp\rit is white", "chair\nseat"], [["lamp"], ["chair"]])
    assert scores.multiline == 1 and scores.overall["EM1"] == 0.0


def test_sqa3d_scores_by_hand():
    questions = [sqa3d("1", "What is in front of me?", "table"), sqa3d("2", "Is the door open?", "yes"),
                 sqa3d("3", "Is the lamp on?", "no"), sqa3d("4", "Which way to the bed?", "left")]
    scores = score_qa3d(SQA3D, questions, [("1", "The table."), ("2", "yes"), ("3", "yes"), ("4", "letf")])
    assert scores.overall == {"EM1": 75.0}
    assert scores.per_type == {"what": {"EM1": 100.0}, "is": {"EM1": 50.0}, "which": {"EM1": 100.0}}
    assert scores.counts == {"what": 1, "is": 2, "which": 1}


def test_what_the_reference_lets_through_is_refused():
    questions = [sqa3d("1", "What is it?", "table"), sqa3d("2", "Is it open?", "yes")]
    with pytest.raises(InputError, match=r"^pred.jsonl: questions answered more than once: 1$"):
        score_qa3d(SQA3D, questions, [("1", "table"), ("1", "chair"), ("2", "yes")], "pred.jsonl")
    with pytest.raises(InputError, match=r"^pred.jsonl: 1 of 2 questions have no answer \(an incomplete run\): 2$"):
        score_qa3d(SQA3D, questions, [("1", "table")], "pred.jsonl")
    with pytest.raises(InputError, match=r"^pred.jsonl: answers to questions not in the question file: 9$"):
        score_qa3d(SCANQA, [scanqa("1", "What is it?", ["table"])], [("1", "table"), ("9", "x")], "pred.jsonl",
                   captions=RecordingCaptions())


def test_points_are_the_fraction_times_100_as_the_reference_prints():
    """2 of 3 right: the reference computes 2 / 3, then x100, which is 66.66666666666666; 100 * 2 / 3 would be
    66.66666666666667, one bit off (found by comparing with the official scorer on ScanQA val)."""
    questions = [sqa3d(str(k), "What is it?", "table") for k in range(3)]
    scores = score_qa3d(SQA3D, questions, [("0", "table"), ("1", "table"), ("2", "chair")])
    assert scores.overall["EM1"] == 66.66666666666666
