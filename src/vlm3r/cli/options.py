"""Options several commands share, declared once (typer's ``Annotated`` form) so that their names, checks and help
read the same in every command; each command still gives its own default."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

ModelFolder = Annotated[Path, typer.Option(
    "--model", help="VLM-3R folder: the released LoRA layout (config.json, adapter, non_lora_trainables.bin) or one "
                    "vlm3r train wrote.")]
BaseFolder = Annotated[Path | None, typer.Option(
    "--base", help="LLaVA-Video-7B-Qwen2 folder, for a LoRA release (a folder vlm3r train wrote names its own).")]
Cut3rWeights = Annotated[Path | None, typer.Option(
    "--cut3r", help="CUT3R weights, cut3r_512_dpt_4_64.pth (a folder vlm3r train wrote names its own).")]
VisionTower = Annotated[Path | None, typer.Option(
    "--vision-tower", help="Folder with the SigLIP tower's config.json, when config.json's mm_vision_tower is not a "
                           "local folder, in the Hugging Face cache, or so400m.")]
ModelFrames = Annotated[int | None, typer.Option(
    "--frames", min=1, help="Frames sampled uniformly from each video (default: the model's own, 32 for the "
                            "released one).")]
MaxNewTokens = Annotated[int, typer.Option("--max-new-tokens", min=1, help="Longest answer, in tokens.")]
Dtype = Annotated[str, typer.Option("--dtype", help="auto, fp32, bf16 or fp16; auto: bf16 on a GPU that has it, "
                                                    "fp16 on an older GPU, fp32 on a CPU.")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps; auto: the first GPU, else "
                                                      "the CPU.")]
QuestionFile = Annotated[Path, typer.Option(
    "--qa", help="Questions: a vlm3r .jsonl, VSI-Bench's test.jsonl or parquet, VSTI-Bench's records or a reference "
                 ".json.")]
EvalQuestionFile = Annotated[Path, typer.Option(
    "--qa", help="Questions: a vlm3r .jsonl, VSI-Bench's test.jsonl or parquet, VSTI-Bench's records or a reference "
                 ".json; ScanQA's ScanQA_v1.0_<split>.json; SQA3D's llava-style .json or its "
                 "v1_balanced_questions_<split>_scannetv2.json (the annotations file beside it).")]
Bench = Annotated[str, typer.Option("--bench", help="vsibench or vstibench (or the short names vsi, vsti).")]
EvalBench = Annotated[str, typer.Option("--bench", help="vsibench, vstibench (or vsi, vsti), scanqa or sqa3d.")]
Workers = Annotated[int, typer.Option("--workers", min=1, help="Processes working in parallel (the output does "
                                                               "not depend on how many).")]


def parse_size(text: str, option: str) -> tuple[int, int]:
    """An image size given as WIDTHxHEIGHT (e.g. ``--size 640x480``); a usage error naming ``option`` otherwise."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise typer.BadParameter(f"expected WIDTHxHEIGHT such as 640x480, got {text!r}", param_hint=option) from exc
    return width, height


class _Flag(TyperOption):
    """A flag takes no value, so its help shows no type (typer 0.29's rich help writes ``<bool>`` after it)."""

    def display_type_rich(self, ctx) -> None:
        return None


class _NamedArgument(TyperArgument):
    """An argument in the usage line by its name, ``QA`` (``[QA]`` when optional, ``QA...`` when it takes
    several), as click writes it, not typer 0.29's ``{qa}``, which reads like an unfilled format placeholder."""

    def get_usage_pieces(self, ctx) -> list[str]:
        name = self.metavar or self.name.upper()
        name = name if self.required else f"[{name}]"
        return [name + ("..." if self.nargs != 1 else "")]


def _plain(param):
    """``param`` shown as above (its class swapped for the subclass that only changes how help shows it)."""
    if type(param) is TyperOption and param.is_flag and not param.count:
        param.__class__ = _Flag
    elif type(param) is TyperArgument:
        param.__class__ = _NamedArgument
    return param


class _PlainHelpCommand(TyperCommand):
    """A command whose help and usage lines show its flags and arguments as ``_plain`` does."""

    def get_params(self, ctx) -> list:
        return [_plain(p) for p in super().get_params(ctx)]


class PlainHelpGroup(TyperGroup):
    """The ``vlm3r`` group (``typer.Typer(cls=PlainHelpGroup)``): it and every command below it, whichever module
    declares them, show flags without a type and arguments by name; their own options (help, completion) too,
    since they are swapped when listed (``get_params``), after typer has added them."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            _adopt(command)

    def get_params(self, ctx) -> list:
        return [_plain(p) for p in super().get_params(ctx)]


def _adopt(command) -> None:
    if type(command) is TyperCommand:
        command.__class__ = _PlainHelpCommand
    elif type(command) is TyperGroup:
        command.__class__ = PlainHelpGroup
        for sub in command.commands.values():
            _adopt(sub)
