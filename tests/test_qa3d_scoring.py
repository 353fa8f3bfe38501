"""ScanQA and SQA3D exact-match scoring: every step of the answer cleaning on hand-worked cases, both EM
definitions, the question types and the scores, and what the reference lets through and vlm3r refuses."""

import pytest

from vlm3r.errors import InputError
from vlm3r.eval.qa3d import (answer_match, clean_answer, scanqa_question_type, score_scanqa, score_sqa3d,
                             sqa3d_question_type)


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
    questions = {"q1": ("What color is the chair?", ["brown", "dark brown"]),
                 "q2": ("What color is the table?", ["white"]),
                 "q3": ("Where is the lamp?", ["on the desk"]),
                 "q4": ("How many chairs are there?", ["2"])}
    predictions = [("q3", "desk"), ("q1", "Brown."), ("q4", "two"), ("q2", "light white wood")]
    scores = score_scanqa(questions, predictions)
    # q1 exact (cleaned "brown"); q2 refined only ("lightwhitewood" contains "white"); q3 refined only ("desk" in
    # "ondesk", after "the" goes); q4 exact ("2" cleans to "two")
    assert scores.overall == {"EM1": 50.0, "EM1_refined": 100.0}
    assert scores.per_type == {"Color": {"EM1": 50.0, "EM1_refined": 100.0},
                               "Place": {"EM1": 0.0, "EM1_refined": 100.0},
                               "Number": {"EM1": 100.0, "EM1_refined": 100.0}}
    assert scores.counts == {"Color": 2, "Place": 1, "Number": 1}


def test_sqa3d_scores_by_hand():
    questions = {"1": ("What is in front of me?", "table"), "2": ("Is the door open?", "yes"),
                 "3": ("Is the lamp on?", "no"), "4": ("Which way to the bed?", "left")}
    scores = score_sqa3d(questions, [("1", "The table."), ("2", "yes"), ("3", "yes"), ("4", "letf")])
    assert scores.overall == {"EM1": 75.0}
    assert scores.per_type == {"what": {"EM1": 100.0}, "is": {"EM1": 50.0}, "which": {"EM1": 100.0}}
    assert scores.counts == {"what": 1, "is": 2, "which": 1}


def test_what_the_reference_lets_through_is_refused():
    questions = {"1": ("What is it?", "table"), "2": ("Is it open?", "yes")}
    with pytest.raises(InputError, match=r"^pred.jsonl: questions answered more than once: 1$"):
        score_sqa3d(questions, [("1", "table"), ("1", "chair"), ("2", "yes")], "pred.jsonl")
    with pytest.raises(InputError, match=r"^pred.jsonl: 1 of 2 questions have no answer \(an incomplete run\): 2$"):
        score_sqa3d(questions, [("1", "table")], "pred.jsonl")
    with pytest.raises(InputError, match=r"^pred.jsonl: answers to questions not in the question file: 9$"):
        score_scanqa({"1": ("What is it?", ["table"])}, [("1", "table"), ("9", "x")], "pred.jsonl")
