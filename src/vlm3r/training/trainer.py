"""The training loop: one code path for a CPU, several GPUs (DDP) and DeepSpeed ZeRO-2, through accelerate.

A run folder holds ``checkpoint-<step>/`` folders (the released layout, ``trainer_state.json`` and the
accelerate state for resuming: optimizer, scheduler, RNG) and, at the end, the released layout at its root
with ``log.jsonl`` (loss and learning rate per optimizer step) and ``loss.png``. Checkpoints are written to a
``.partial`` folder and renamed when complete.

A run stops with ``NonFiniteError`` at the first micro-batch whose loss is not finite, before its backward pass
(the weights stay those of the step before), and a checkpoint is written only of finite weights: the newest
checkpoint of a stopped run is always a good one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration, PartialState
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from transformers import get_cosine_schedule_with_warmup

from vlm3r.errors import Vlm3rError
from vlm3r.model.checkpoint import CHECKPOINT_PREFIX, checkpoint_dir, checkpoint_dirs, checkpoint_step
from vlm3r.model.config import Vlm3rConfig
from vlm3r.model.loading import load_tokenizer
from vlm3r.model.modeling_vlm3r import Vlm3rModel
from vlm3r.model.prompt import bundled_tokenizer_dir
from vlm3r.model.saving import CUT3R_FILE, VISION_TOWER_DIR, spatial_state, write_cut3r
from vlm3r.training.config import TrainConfig
from vlm3r.training.data import (ConversationDataset, DataOptions, TrainingDataError, check_sample_files, collate,
                                 read_training_samples, trained_template)
from vlm3r.training.lora import add_lora, set_trainable
from vlm3r.training.features import FeatureSpec
from vlm3r.training.state import ResumeError, load_state, save_state
from vlm3r.utils.fileio import atomic_path, atomic_write_text, parse_jsonl_objects, read_json
from vlm3r.utils.progress import PlainProgress, output_is_terminal, progress_bar

log = logging.getLogger(__name__)
STATE_FILE = "trainer_state.json"
LOG_FILE = "log.jsonl"
LOSS_PLOT = "loss.png"
LOSS_PLOT_SIZE = (6, 3.5)  # inches
LOSS_PLOT_DPI = 120  # pixels per inch: a 720 x 420 image
# How many non-finite trained tensors an error names (the rest are counted).
NAMED_BAD_TENSORS = 5
# What a run writes into its folder: removed by --overwrite (nothing else is); "vision_tower" is the name runs
# before 2026-12 gave the tower folder (saving.VISION_TOWER_DIR now).
RUN_OUTPUTS = (f"{CHECKPOINT_PREFIX}*", "base", VISION_TOWER_DIR, "vision_tower", LOG_FILE, LOSS_PLOT, STATE_FILE,
               "config.json", "adapter_config.json", "adapter_model.bin", "adapter_model.safetensors",
               "non_lora_trainables.bin", "README.md")


def deepspeed_requested() -> bool:
    """Launched by ``accelerate launch`` with a DeepSpeed config (configs/accelerate/zero2.yaml)."""
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"


class RunFolderError(Vlm3rError):
    """An output folder that holds another run; the message says how to resume or replace it."""


class NonFiniteError(Vlm3rError):
    """A run whose loss (or trained weights) stopped being finite; the message names the run folder, the step and
    the last good checkpoint."""


def check_run_folder(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """A new run needs an empty (or absent) folder: it would otherwise mix its log, checkpoints and pruning with
    an older run's, and ``--resume latest`` could pick the older run up."""
    if resume or overwrite or not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir}: run.output_dir is a file, not a folder")
    entries = sorted(p.name for p in run_dir.iterdir())
    if entries:
        raise RunFolderError(f"{run_dir}: run.output_dir is not empty ({', '.join(entries[:6])}"
                             f"{' ...' if len(entries) > 6 else ''}): continue that run with --resume latest, "
                             "replace it with --overwrite, or choose another run.output_dir")


def clear_run_outputs(run_dir: Path) -> None:
    """Remove what an earlier run wrote into ``run_dir`` (``RUN_OUTPUTS``), nothing else."""
    for pattern in RUN_OUTPUTS:
        for path in run_dir.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


@dataclass
class TrainerState:
    global_step: int = 0
    steps_per_epoch: int = 0
    total_steps: int = 0
    log_history: list[dict] = field(default_factory=list)

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(dataclasses.asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> TrainerState:
        values = read_json(path, ResumeError, dict, "the trainer state")
        known = {f.name for f in dataclasses.fields(cls)}
        if set(values) - known:
            raise ResumeError(f"{path}: unknown fields {', '.join(sorted(set(values) - known))}")
        return cls(**values)


def build_model(cfg: TrainConfig, run_dir: Path, accelerator: Accelerator) -> tuple[Vlm3rModel, object, dict]:
    """The starting model, its tokenizer, and the paths saved checkpoints refer to (model_base, cut3r_weights)."""
    m = cfg.model
    options = dict(fusion=m.fusion, spatial_tower_select_feature=m.spatial_tower_select_feature,
                   fusion_dropout=m.fusion_dropout, num_frames=cfg.data.num_frames)
    if not m.tiny:
        # LLaVA-Video-7B-Qwen2 + CUT3R, with a new fusion block (docs/design.md, model §5.5); the vocabulary keeps
        # the checkpoint's size, as the reference trains
        model = Vlm3rModel.from_pretrained(m.base, cut3r=m.cut3r, new_modules=("fusion_block",), **options)
        return model, load_tokenizer(m.base), {"model_base": str(Path(m.base).resolve()),
                                               "cut3r_weights": str(Path(m.cut3r).resolve()) if m.fusion else None}
    torch.manual_seed(m.init_seed)
    model = Vlm3rModel(Vlm3rConfig.tiny(**options))
    tokenizer = load_tokenizer(m.tokenizer or bundled_tokenizer_dir())
    base_dir, cut3r_path = run_dir / "base", run_dir / "base" / CUT3R_FILE
    if accelerator.is_main_process:  # the generated base, so that the run's outputs load like released ones
        model.save_pretrained(base_dir, tokenizer, base_only=True)
        if m.fusion:
            write_cut3r(model.config.cut3r, spatial_state(model.state_dict()), cut3r_path)
    accelerator.wait_for_everyone()
    return model, tokenizer, {"model_base": str(base_dir.resolve()),
                              "cut3r_weights": str(cut3r_path.resolve()) if m.fusion else None}


def step_epoch(step: int, steps_per_epoch: int) -> int:
    """The epoch (counted from 0, as log.jsonl) that optimizer step ``step`` (counted from 1) belongs to."""
    return (step - 1) // steps_per_epoch


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The run's complete checkpoint of the latest step (one with its trainer state), or None."""
    done = [p for p in checkpoint_dirs(run_dir) if (p / STATE_FILE).is_file()]
    return done[-1] if done else None


def plot_loss(history: list[dict], path: Path):
    """loss.png: the train loss of every logged step (log scale); returns the drawn Figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=LOSS_PLOT_SIZE)
    FigureCanvasAgg(fig)  # drawn off-screen; the program's own matplotlib backend is left alone
    ax = fig.subplots()
    ax.plot([h["step"] for h in history], [h["loss"] for h in history], lw=1.2)
    ax.set(xlabel="optimizer step", ylabel="train loss", yscale="log", title="VLM-3R training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=LOSS_PLOT_DPI)
    return fig


class Trainer:
    """The training recipe, in the order it runs: ``setup()`` (``_setup_model``, ``_setup_data``,
    ``_setup_optimizer``, then ``_setup_lr_scheduler`` on the prepared loader), ``resume()`` when asked, then
    ``train()`` over ``_train_step(batch)``. Every config field was validated when the config was read."""

    def __init__(self, cfg: TrainConfig, resume: bool = False, overwrite: bool = False):
        self.cfg, self.resuming, self.overwrite = cfg, resume, overwrite
        self.run_dir = Path(cfg.run.output_dir)
        self._stepped = True  # whether the current step's optimizer step has run (error messages count steps)

    def setup(self) -> Trainer:
        """Check the run folder, then set the run up (``_setup_run``); a failed start leaves no trace of itself."""
        check_run_folder(self.run_dir, self.resuming, self.overwrite)
        existed = self.run_dir.exists()
        self.accelerator = self._setup_accelerator()
        self.accelerator.wait_for_everyone()  # every process has checked the folder before any writes to it
        if self.overwrite and not self.resuming and self.accelerator.is_main_process and self.run_dir.is_dir():
            clear_run_outputs(self.run_dir)
        try:
            self._setup_run()
        except BaseException:
            self._undo_start(existed)
            raise
        return self

    def _undo_start(self, existed: bool) -> None:
        """After a failed start of a new run, remove what it wrote (the tiny recipe's ``base/``) and the folder if
        it made it, so that the next try is not refused as a used folder. A resumed run's folder is left alone."""
        if self.resuming or not self.accelerator.is_main_process or not self.run_dir.is_dir():
            return
        clear_run_outputs(self.run_dir)
        if not existed and not any(self.run_dir.iterdir()):
            self.run_dir.rmdir()

    def _setup_run(self) -> None:
        """Seed, model, data, optimizer and schedule (``setup`` once the run folder is checked)."""
        cfg = self.cfg
        set_seed(cfg.run.seed)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        model = self._setup_model()
        loader = self._setup_data(model)
        optimizer = self._setup_optimizer(model)
        self.model, self.optimizer, self.loader = self.accelerator.prepare(model, optimizer, loader)
        if len(self.loader) == 0:
            raise TrainingDataError(f"{cfg.data.train}: {len(loader.dataset)} samples make no full batch of "
                                    f"{cfg.optim.batch_size} per process")
        self.scheduler = self._setup_lr_scheduler()

    def _setup_accelerator(self) -> Accelerator:
        cfg = self.cfg
        on_cpu = not (torch.cuda.is_available() or torch.backends.mps.is_available())
        if on_cpu and deepspeed_requested():
            # accelerate's cpu=True would turn DeepSpeed off, silently, and without it accelerate finds no backend
            # for DeepSpeed on a CPU: gloo, given first, carries DeepSpeed's collectives between CPU processes
            PartialState(backend="gloo")
        return Accelerator(  # cpu=True lets torchrun / accelerate launch use gloo between CPU processes
            cpu=on_cpu and not deepspeed_requested(), gradient_accumulation_steps=cfg.optim.grad_accum,
            mixed_precision=cfg.run.mixed_precision,
            dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True))

    def _setup_model(self) -> Vlm3rModel:
        """The starting model with LoRA, what trains set (``self.trainable``), the files saved checkpoints refer to
        (``self.references``) and the tokenizer."""
        cfg = self.cfg
        model, self.tokenizer, self.references = build_model(cfg, self.run_dir, self.accelerator)
        if cfg.run.gradient_checkpointing:
            model.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        add_lora(model, cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout)
        self.trainable = set_trainable(model, tuple(cfg.run.extra_trainable))
        log.info("%d trainable tensors, %d parameters", len(self.trainable),
                 sum(p.numel() for p in model.parameters() if p.requires_grad))
        return model

    def _feature_options(self, model: Vlm3rModel) -> dict:
        """DataOptions fields for precomputed CUT3R tokens: none when CUT3R trains (its tokens must be computed)
        or none are configured."""
        cfg, config = self.cfg, model.config
        if not cfg.data.features or not config.fusion:
            return {}
        if any(name.startswith("spatial_tower.") for name in self.trainable):
            log.warning("CUT3R trains: its tokens are computed every step; data.features (%s) is not read",
                        cfg.data.features)
            return {}
        spec = FeatureSpec.for_cut3r(config.cut3r, cfg.data.num_frames, config.vision.image_size,
                                     config.cut3r_image_size, self.references["cut3r_weights"])
        return {"features": Path(cfg.data.features), "feature_spec": spec,
                "require_features": cfg.data.require_features}

    def _setup_data(self, model: Vlm3rModel) -> DataLoader:
        cfg = self.cfg
        samples = read_training_samples(cfg.data.train, cfg.run.seed)
        if not samples:
            raise TrainingDataError(f"{cfg.data.train}: no training samples")
        features = self._feature_options(model)
        check_sample_files(samples, Path(cfg.data.video_folder), str(cfg.data.train), features.get("features"),
                           features.get("require_features", False))
        options = DataOptions(Path(cfg.data.video_folder), cfg.data.num_frames, model.config.vision.image_size,
                              cfg.data.add_time_instruction, cfg.data.masking, **features,
                              image_token_index=model.config.image_token_index,
                              ignore_index=model.config.ignore_index)
        # the user turn these samples teach, recorded in the saved config.json for ask, eval run, serve and lmms-eval
        model.config = dataclasses.replace(model.config, prompt=trained_template(samples, options.add_time_instruction))
        dataset = ConversationDataset(samples, self.tokenizer, options, str(cfg.data.train))
        return DataLoader(dataset, batch_size=cfg.optim.batch_size, shuffle=True, collate_fn=collate,
                          drop_last=True, num_workers=cfg.data.num_workers,
                          # its own generator: starting an epoch then draws no number from the global RNG, so a
                          # resumed run's dropout sees the same random stream as an uninterrupted one
                          generator=torch.Generator().manual_seed(cfg.run.seed))

    def _setup_optimizer(self, model: Vlm3rModel) -> torch.optim.Optimizer:
        o = self.cfg.optim
        return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=o.lr, betas=o.adam_betas,
                                 eps=o.adam_eps, weight_decay=o.weight_decay)

    def _setup_lr_scheduler(self):
        """Cosine with linear warm-up over the run's optimizer steps (``optim.max_steps``, else ``optim.epochs``
        epochs); stepped by us once per optimizer step (not prepared: accelerate would step it once per process)."""
        o = self.cfg.optim
        steps_per_epoch = math.ceil(len(self.loader) / o.grad_accum)
        total = steps_per_epoch * o.epochs if o.max_steps is None else o.max_steps
        self.state = TrainerState(steps_per_epoch=steps_per_epoch, total_steps=total)
        return get_cosine_schedule_with_warmup(self.optimizer, math.ceil(o.warmup_ratio * total), total)

    @property
    def unwrapped(self) -> Vlm3rModel:
        return self.accelerator.unwrap_model(self.model)

    def resume(self, checkpoint: Path) -> None:
        state = TrainerState.load(checkpoint / STATE_FILE)
        if (state.steps_per_epoch, state.total_steps) != (self.state.steps_per_epoch, self.state.total_steps):
            raise ResumeError(f"{checkpoint}: written for {state.total_steps} steps of {state.steps_per_epoch} per "
                             f"epoch; this config makes {self.state.total_steps} of {self.state.steps_per_epoch}")
        load_state(checkpoint / "state", self.accelerator, self.unwrapped, self.optimizer, self.scheduler)
        self.state = state
        self._truncate_log(state.global_step)
        log.info("resumed from %s at step %d", checkpoint, state.global_step)

    def save(self, folder: Path) -> Path:
        """Released layout + trainer state + resumable state, complete or absent."""
        partial = folder.with_name(folder.name + ".partial")
        if self.accelerator.is_main_process and partial.exists():
            shutil.rmtree(partial)
        self.accelerator.wait_for_everyone()
        save_state(partial / "state", self.accelerator, self.unwrapped, self.optimizer, self.scheduler)
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            self.unwrapped.save_pretrained(partial, **self.references_from(folder))
            self.state.save(partial / STATE_FILE)
            if folder.exists():
                shutil.rmtree(folder)
            partial.rename(folder)
            self._prune()
        self.accelerator.wait_for_everyone()
        return folder

    def references_from(self, folder: Path) -> dict:
        """``model_base`` / ``cut3r_weights`` for a config.json in ``folder``: relative where they are inside the
        run folder (the run can be moved or copied whole), absolute otherwise."""
        run = self.run_dir.resolve()
        out = {}
        for name, value in self.references.items():
            if value is not None and Path(value).resolve().is_relative_to(run):
                value = os.path.relpath(Path(value).resolve(), folder.resolve())
            out[name] = value
        return out

    def _truncate_log(self, step: int) -> None:
        """On resume, the log keeps only the steps up to the checkpoint's: later ones are trained again."""
        path = self.run_dir / LOG_FILE
        if not self.accelerator.is_main_process or not path.is_file():
            return
        lines = path.read_text().splitlines()
        rows = parse_jsonl_objects(lines, f"{path} (the run's log)", ResumeError)
        kept = [lines[number - 1] for number, row in rows if row.get("step", 0) <= step]
        atomic_write_text(path, "".join(line + "\n" for line in kept))

    def _prune(self) -> None:
        for old in checkpoint_dirs(self.run_dir)[:-self.cfg.run.save_total_limit]:
            shutil.rmtree(old)

    def _due(self, end_of_epoch: bool) -> bool:
        every = self.cfg.run.save_every
        return end_of_epoch if every == "epoch" else self.state.global_step % int(every) == 0

    def _train_step(self, batch: dict) -> torch.Tensor:
        """One micro-batch: forward, backward and, at the end of an accumulation window, the optimizer step
        (clipped); returns the detached loss."""
        acc, cfg = self.accelerator, self.cfg
        with acc.accumulate(self.model):
            loss = self.model(**batch, max_length=cfg.data.max_length).loss
            self._check_loss(loss)  # before backward: a non-finite loss never reaches the weights
            acc.backward(loss)
            if acc.sync_gradients and cfg.optim.max_grad_norm > 0:
                acc.clip_grad_norm_(self._trainable_params, cfg.optim.max_grad_norm)
            self.optimizer.step()
            self.optimizer.zero_grad()
        return loss.detach()

    def _check_loss(self, loss: torch.Tensor) -> None:
        """Stop the run (every process at once) when a micro-batch's loss is not finite on any process."""
        acc = self.accelerator
        losses = acc.gather(loss.detach().float().reshape(1))  # one value per process
        if not bool(torch.isfinite(losses).all()):
            values = ", ".join(str(v) for v in losses.tolist())
            raise NonFiniteError(self._stopped(f"the training loss is not finite ({values}"
                                               f"{' per process' if acc.num_processes > 1 else ''}); this step "
                                               "did not change the weights"))

    def _check_weights(self) -> None:
        """Refuse to save trained weights that are not finite (an update that overflowed with a finite loss)."""
        acc = self.accelerator
        bad = [name for name, p in self.unwrapped.named_parameters()
               if p.requires_grad and not bool(torch.isfinite(p).all())]
        if int(acc.reduce(torch.tensor(len(bad), device=acc.device), "sum").item()):
            more = f" and {len(bad) - NAMED_BAD_TENSORS} more" if len(bad) > NAMED_BAD_TENSORS else ""
            raise NonFiniteError(self._stopped(f"trained weights are not finite after the optimizer step "
                                               f"({', '.join(bad[:NAMED_BAD_TENSORS])}{more}); they are not "
                                               "saved"))

    def _stopped(self, what: str) -> str:
        """The message of a run stopped at the current step: the step, what happened, the last good checkpoint."""
        st = self.state
        step = st.global_step + (0 if self._stepped else 1)
        last = latest_checkpoint(self.run_dir)
        kept = (f"the last good checkpoint is {last} (step {checkpoint_step(last)})" if last is not None else
                "no checkpoint was written before it")
        return (f"{self.run_dir}: step {step} of {st.total_steps} (epoch {step_epoch(step, st.steps_per_epoch)}): "
                f"{what}. The run stopped; {kept}. Look for what drives it there (optim.lr "
                f"{self.cfg.optim.lr}, the samples of that step) before running again")

    def _log_step(self, epoch: int, window: list[torch.Tensor], lr: float) -> float:
        """The optimizer step's mean loss over the window and all processes, logged every ``log_every``."""
        acc, st = self.accelerator, self.state
        mean_loss = acc.reduce(torch.stack(window).mean(), "mean").item()
        entry = {"step": st.global_step, "epoch": epoch, "loss": mean_loss, "lr": lr}
        st.log_history.append(entry)
        if acc.is_main_process and st.global_step % self.cfg.run.log_every == 0:
            with (self.run_dir / LOG_FILE).open("a") as f:
                f.write(json.dumps(entry) + "\n")
        return mean_loss

    def train(self, stop_after_steps: int | None = None) -> Path:
        """Run to the end of the schedule (or for ``stop_after_steps`` more optimizer steps, then checkpoint).
        Progress: a bar on a terminal, else plain lines (``utils.progress.PlainProgress``) from the first process."""
        acc, cfg, st = self.accelerator, self.cfg, self.state
        start_step = st.global_step
        self._trainable_params = [p for p in self.model.parameters() if p.requires_grad]
        self.model.train()
        terminal = output_is_terminal()
        lines = PlainProgress(st.total_steps, start_step) if acc.is_main_process and not terminal else None
        epochs = math.ceil(st.total_steps / st.steps_per_epoch)  # optim.epochs, or as many as optim.max_steps take
        with progress_bar(enabled=terminal) as bar:
            task = bar.add_task("training", total=st.total_steps, completed=st.global_step,
                                visible=acc.is_main_process)
            for epoch in range(st.global_step // st.steps_per_epoch, epochs):
                self.loader.set_epoch(epoch)
                done_in_epoch = st.global_step - epoch * st.steps_per_epoch
                window = []
                for batch in acc.skip_first_batches(self.loader, done_in_epoch * cfg.optim.grad_accum):
                    self._stepped = False
                    window.append(self._train_step(batch))
                    if not acc.sync_gradients:
                        continue
                    lr = self.scheduler.get_last_lr()[0]
                    self.scheduler.step()
                    st.global_step += 1
                    self._stepped = True
                    mean_loss = self._log_step(epoch, window, lr)
                    window = []
                    bar.update(task, completed=st.global_step, description=f"training  loss {mean_loss:.3f}")
                    if lines is not None:
                        lines.update(st.global_step, mean_loss)
                    end_of_epoch = st.global_step == (epoch + 1) * st.steps_per_epoch
                    stopping = stop_after_steps is not None and st.global_step - start_step >= stop_after_steps
                    stopping = stopping and st.global_step < st.total_steps
                    if self._due(end_of_epoch) or stopping:
                        self._check_weights()
                        self.save(checkpoint_dir(self.run_dir, st.global_step))
                    if stopping:
                        return checkpoint_dir(self.run_dir, st.global_step)
                    if st.global_step == st.total_steps:  # optim.max_steps may end the run inside an epoch
                        break
        self._check_weights()
        if acc.is_main_process:
            self.unwrapped.save_pretrained(self.run_dir, **self.references_from(self.run_dir))
            st.save(self.run_dir / STATE_FILE)
            plot_loss(st.log_history, self.run_dir / LOSS_PLOT)
        acc.wait_for_everyone()
        return self.run_dir


def train(cfg: TrainConfig, resume: str | None = None, stop_after_steps: int | None = None,
          overwrite: bool = False) -> Path:
    """Train as configured; ``resume``: a checkpoint folder or ``latest``; ``overwrite``: replace an earlier run
    in the output folder. Returns the folder written last."""
    trainer = Trainer(cfg, resume=bool(resume), overwrite=overwrite).setup()
    if resume:
        checkpoint = latest_checkpoint(trainer.run_dir) if resume == "latest" else Path(resume)
        if checkpoint is None or not (checkpoint / STATE_FILE).is_file():
            raise ResumeError(f"{resume}: no complete checkpoint to resume from in {trainer.run_dir} (--resume takes "
                              f"a checkpoint folder with its {STATE_FILE}, or latest)")
        trainer.resume(checkpoint)
    return trainer.train(stop_after_steps)
