"""Training samples: LLaVA conversation JSON -> video frames, optional CUT3R feature files, ids and labels
(docs/design.md, model §5.1-5.3).

``data.train`` is a JSON list of samples (``vlm3r qa export --format llava``) or a YAML file
``datasets: [{json_path, sampling_strategy}]`` as the reference's ``data_path`` (strategies ``all``,
``first:N``, ``end:N``, ``random:N``; N may be a percentage such as ``random:10%``).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

import yaml
from torch.utils.data import Dataset

from vlm3r.errors import Vlm3rError
from vlm3r.model.prompt import IGNORE_INDEX, IMAGE_TOKEN, IMAGE_TOKEN_INDEX, PromptTemplate, time_instruction_text
from vlm3r.qa.prompts import NA_POST_PROMPT, PRE_PROMPT
from vlm3r.model.video import siglip_pixels
from vlm3r.training.features import FeatureSpec, feature_path, load_features
from vlm3r.training.tokenization import ConversationError, tokenize_conversation
from vlm3r.utils.fileio import read_json
from vlm3r.utils.frames import NUM_FRAMES, SIGLIP_IMAGE_SIZE
from vlm3r.utils.video import first_listed, read_video_frames, unreadable_videos

log = logging.getLogger(__name__)


class TrainingDataError(Vlm3rError):
    """Unusable training data; the message names the file and the sample or field."""


def _read_json_list(path: Path) -> list[dict]:
    samples = read_json(path, TrainingDataError, list, "LLaVA training samples")
    for k, sample in enumerate(samples):
        conversations = sample.get("conversations") if isinstance(sample, dict) else None
        if not isinstance(conversations, list) or not conversations:
            raise TrainingDataError(f"{path}: sample {k}: needs a non-empty 'conversations' list")
        if "video" in sample and not isinstance(sample["video"], str):
            raise TrainingDataError(f"{path}: sample {k}: 'video' must be a path string")
    return samples


def _sample(samples: list[dict], strategy: str, rng: random.Random, where: str) -> list[dict]:
    if strategy == "all":
        return samples
    kind, _, amount = strategy.partition(":")
    try:
        count = (int(len(samples) * float(amount[:-1]) / 100) if amount.endswith("%") else int(amount))
    except ValueError:
        count = -1
    if kind not in ("first", "end", "random") or count < 0:
        raise TrainingDataError(f"{where}: sampling_strategy {strategy!r}: expected all, first:N, end:N or "
                                "random:N (N a count or a percentage)")
    if kind == "first":
        return samples[:count]
    if kind == "end":
        return samples[len(samples) - count:] if count else []
    return rng.sample(samples, min(count, len(samples)))


def read_training_samples(path: Path | str, seed: int = 42, every: bool = False) -> list[dict]:
    """The samples of ``path`` (JSON list, or YAML ``datasets``, each file's ``sampling_strategy`` drawn with
    ``seed``); ``every``: ignore the strategies (feature extraction, which must cover any seed's draw)."""
    path = Path(path)
    if path.suffix.lower() not in (".yaml", ".yml"):
        return _read_json_list(path)
    try:
        listing = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TrainingDataError(f"{path}: not a readable YAML file ({exc})") from exc
    entries = listing.get("datasets") if isinstance(listing, dict) else None
    if not isinstance(entries, list):
        raise TrainingDataError(f"{path}: expected 'datasets: [{{json_path: ...}}, ...]'")
    rng = random.Random(seed)
    samples = []
    for k, entry in enumerate(entries):
        if not isinstance(entry, dict) or "json_path" not in entry:
            raise TrainingDataError(f"{path}: datasets[{k}]: needs json_path")
        json_path = Path(entry["json_path"])
        json_path = json_path if json_path.is_absolute() else path.parent / json_path
        strategy = "all" if every else str(entry.get("sampling_strategy", "all"))
        samples += _sample(_read_json_list(json_path), strategy, rng, f"{path}: datasets[{k}]")
    return samples


def check_sample_files(samples: list[dict], video_folder: Path, source: str, features: Path | None = None,
                       require_features: bool = False) -> None:
    """Every sample's video opens (header read, each file once), or one error lists every bad sample: a missing
    or unreadable video is found before the first step, not in the middle of an epoch. So is a missing feature
    file when they are required (else one warning counts the videos CUT3R will run on).

    Args:
        samples, video_folder, source: the training samples, the folder their videos are under, and the file
            they came from (named in the error).
        features, require_features: the feature folder (None: no features) and whether each video needs one.
    """
    names: dict[Path, str] = {}  # each video once, as its first sample names it
    for sample in samples:
        if "video" in sample:
            names.setdefault(video_folder / sample["video"], sample["video"])
    reasons = unreadable_videos(names)
    bad = [f"sample {index} ({sample.get('id')}): {reasons[video_folder / sample['video']]}"
           for index, sample in enumerate(samples)
           if "video" in sample and video_folder / sample["video"] in reasons]
    if bad:
        raise TrainingDataError(f"{source}: {len(bad)} of {len(samples)} samples have no readable video: "
                                f"{first_listed(bad)}")
    unfeatured = [] if features is None else [
        str(path) for path in (feature_path(features, video_folder, name) for name in names.values())
        if not path.is_file()]
    if unfeatured and require_features:
        raise TrainingDataError(f"{features}: no feature file for {len(unfeatured)} of {len(names)} videos "
                                f"(data.require_features is true: extract them with `vlm3r features extract`): "
                                f"{first_listed(unfeatured)}")
    if unfeatured:
        log.warning("%s: no feature file for %d of %d videos; CUT3R runs on them", features, len(unfeatured),
                    len(names))


def first_question(sample: dict) -> str:
    """A sample's first human turn without its ``<image>`` slot (and the newline after it)."""
    turns = sample.get("conversations") or [{}]
    value = turns[0].get("value", turns[0].get("content", ""))
    return value.replace(f"{IMAGE_TOKEN}\n", "", 1).replace(IMAGE_TOKEN, "") if isinstance(value, str) else ""


def trained_template(samples: list[dict], add_time_instruction: bool) -> PromptTemplate:
    """The prompt template ``samples`` teach (recorded with the run, used by every command that asks the
    model): the time instruction as configured; the benchmark prompt's first line when every sample's question
    starts with it, and its short-answer line when a sample's question ends with it (``vlm3r qa export --format
    llava`` writes both); otherwise the questions as given."""
    questions = [first_question(s) for s in samples]
    pre = PRE_PROMPT if questions and all(q.startswith(PRE_PROMPT) for q in questions) else ""
    post = NA_POST_PROMPT if any(q.rstrip().endswith(NA_POST_PROMPT) for q in questions) else ""
    return PromptTemplate(add_time_instruction, pre, post)


def with_time_instruction(conversations: list[dict], instruction: str) -> list[dict]:
    """``<image>\\n{TI}\\n`` + the first turn with ``<image>`` removed (hence the blank line, as the reference)."""
    first = dict(conversations[0])
    first["value"] = f"{IMAGE_TOKEN}\n{instruction}\n{first['value'].replace(IMAGE_TOKEN, '')}"
    return [first, *conversations[1:]]


@dataclass(frozen=True)
class DataOptions:
    """How samples become model inputs; the trainer fills the sizes and the two sentinels from the model's
    config (the defaults are model.prompt's)."""

    video_folder: Path
    num_frames: int = NUM_FRAMES
    image_size: int = SIGLIP_IMAGE_SIZE
    add_time_instruction: bool = True
    masking: str = "reference"
    features: Path | None = None  # precomputed CUT3R tokens (``feature_path`` below it); None: computed
    feature_spec: FeatureSpec | None = None  # what the files must match (frames, sizes, CUT3R checksum)
    require_features: bool = False  # a missing feature file is an error (else a warning, once per file)
    image_token_index: int = IMAGE_TOKEN_INDEX  # the model config's id where <image> stands in the ids
    ignore_index: int = IGNORE_INDEX  # the model config's label of a position not learned


class ConversationDataset(Dataset):
    """Map-style dataset of training samples; each item: ids, labels, the video's pixels and CUT3R features."""

    def __init__(self, samples: list[dict], tokenizer, options: DataOptions, source: str = "training data"):
        self.samples, self.tokenizer, self.options, self.source = samples, tokenizer, options, source
        self._warned: set[Path] = set()

    def _features(self, name: str, video: Path, indices) -> dict | None:
        """The precomputed tokens of a sample's video (``name`` as the sample gives it, relative to the video
        folder), or None to compute them."""
        opts = self.options
        if opts.features is None:
            return None
        path = feature_path(opts.features, opts.video_folder, name)
        if path.is_file():
            return load_features(path, opts.feature_spec, indices)
        if opts.require_features:
            raise TrainingDataError(f"{path}: no feature file for {video} (data.require_features is true: "
                                    "extract them with `vlm3r features extract`)")
        if path not in self._warned:
            self._warned.add(path)
            log.warning("%s: no feature file for %s; CUT3R runs on it instead", path, video)
        return None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample, opts = self.samples[index], self.options
        conversations = sample["conversations"]
        pixels = features = None
        if "video" in sample:
            video = opts.video_folder / sample["video"]
            frames, indices, fps = read_video_frames(video, opts.num_frames)
            pixels = siglip_pixels(frames, opts.image_size)
            features = self._features(sample["video"], video, indices)
            if opts.add_time_instruction:
                conversations = with_time_instruction(conversations, time_instruction_text(indices, fps))
        try:
            tokens = tokenize_conversation(self.tokenizer, conversations, opts.masking,
                                           image_token_index=opts.image_token_index, ignore_index=opts.ignore_index)
        except ConversationError as exc:
            raise TrainingDataError(f"{self.source}: sample {index} ({sample.get('id')}): {exc}") from exc
        images = tokens.images
        if images != (pixels is not None):
            raise TrainingDataError(f"{self.source}: sample {index} ({sample.get('id')}): {images} <image> "
                                    f"tags for {int(pixels is not None)} video")
        return {"input_ids": tokens.input_ids, "labels": tokens.labels, "pixel_values": pixels,
                "spatial_features": features}


def collate(items: list[dict]) -> dict:
    """Lists per field (the model splices and pads); samples without a video contribute no pixels."""
    with_video = [it for it in items if it["pixel_values"] is not None]
    return {"input_ids": [it["input_ids"] for it in items], "labels": [it["labels"] for it in items],
            "pixel_values": [it["pixel_values"] for it in with_video],
            "spatial_features": [it["spatial_features"] for it in with_video]}
