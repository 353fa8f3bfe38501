"""``vlm3r train``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from vlm3r.cli.errors import check_output, guarded


@guarded
def train(
    config: str = typer.Option(..., "--config", help="Recipe: a YAML file or a built-in name (tiny, vsibench-7b)."),
    set_: list[str] = typer.Option([], "--set", help="Override a field: section.field=value (repeatable)."),
    resume: str = typer.Option(None, "--resume", help="Checkpoint folder to resume from, or 'latest'."),
    stop_after_steps: int = typer.Option(None, "--stop-after-steps", min=1,
                                         help="Checkpoint and stop after this many optimizer steps (fit a job's "
                                              "time limit; continue with --resume latest)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier run in run.output_dir (only "
                                                              "what a run writes there is removed)."),
) -> None:
    """Fine-tune VLM-3R (LoRA on Qwen2, fusion block and projector) on LLaVA conversation JSON.

    Runs as is on one device; launch with accelerate or torchrun for several GPUs, or with
    configs/accelerate/zero2.yaml for DeepSpeed ZeRO-2.

    Example: vlm3r train --config tiny --set data.train=demo_out/train_llava.json --set run.output_dir=runs/tiny
    """
    from vlm3r.training.config import load_train_config

    cfg = load_train_config(config, set_)
    check_output(Path(cfg.run.output_dir), folder=True, option="run.output_dir")
    from vlm3r.training.trainer import train as run_training  # seconds of imports: after the config is checked

    out = run_training(cfg, resume, stop_after_steps, overwrite)
    Console().print(f"wrote {out}")
