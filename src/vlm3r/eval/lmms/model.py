"""VLM-3R as an lmms-eval model: ``--model vlm3r --model_args pretrained=DIR,cut3r=FILE,base=DIR``.

Requests are grouped by video: each video is encoded and its prompt prefix prefilled once (the pipeline's
per-video caches), and ``batch_size`` questions of a video are answered together. A request whose
``generation_kwargs`` name a reference prompt (``vlm3r_prompt: scanqa/preload``, written by ``vlm3r eval
lmms-tasks --bench scanqa|sqa3d``) is asked in it, as ``vlm3r eval run`` asks; any other in the model's own.
Launched on several processes (``accelerate launch`` or ``torchrun``), lmms-eval deals the documents to the
processes itself; the model reads its rank and world size from the launcher's environment and, on GPUs, takes the
device of its local rank.
"""

from __future__ import annotations

import inspect
import os

import torch
from lmms_eval.api.model import lmms

from vlm3r.errors import InputError
from vlm3r.eval.lmms.tasks import PROMPT_KEY, request_template
from vlm3r.model.pipeline import Vlm3rPipeline
from vlm3r.model.prompt import MAX_NEW_TOKENS
from vlm3r.utils.devices import AUTO, placement
from vlm3r.utils.frames import NUM_FRAMES

class Vlm3rLmms(lmms):
    def __init__(self, pretrained: str, cut3r: str | None = None, base: str | None = None, device: str = AUTO,
                 dtype: str = AUTO, max_frames_num: int = NUM_FRAMES, batch_size: int = 1,
                 vision_tower: str | None = None, **unknown) -> None:
        """The model of ``--model_args`` (lmms-eval adds ``batch_size`` and ``device``, and ``max_batch_size`` when
        given); an argument it does not take is refused, as lmms-eval's own models refuse one, not ignored."""
        if unknown:
            taken = [p for p in inspect.signature(Vlm3rLmms.__init__).parameters if p not in ("self", "unknown")]
            raise InputError(f"--model_args: vlm3r takes no {', '.join(sorted(unknown))} (it takes "
                             f"{', '.join(taken)})")
        super().__init__()
        self._rank = int(os.environ.get("RANK", 0))
        self._world_size = int(os.environ.get("WORLD_SIZE", 1))
        chosen = placement(str(device), str(dtype), "device", "dtype")  # auto: the best this machine has
        device = chosen.device
        if device.startswith("cuda") and ":" not in device and self._world_size > 1:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        self.batch_size_per_gpu = int(batch_size)
        if self.batch_size_per_gpu < 1:
            raise InputError(f"batch_size: at least 1, got {batch_size}")
        self.pipeline = Vlm3rPipeline.from_options(pretrained, cut3r, base, vision_tower, dtype=chosen.dtype,
                                                   device=device, frames=int(max_frames_num),
                                                   dtype_option="dtype", device_option="device")  # checks both
        self._device = torch.device(device)

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def batch_size(self) -> int:
        return self.batch_size_per_gpu

    def generate_until(self, requests) -> list[str]:
        """One answer per request: the video from ``doc_to_visual``, the text from ``doc_to_text`` in the user turn
        (the model's own, ``<image>\\n`` then the text, or the reference prompt the request's ``vlm3r_prompt``
        names), greedy decoding with the task's ``max_new_tokens``; answers come back in request order. An unknown
        ``vlm3r_prompt`` is refused before any answer."""
        groups: dict[tuple, list[int]] = {}
        texts, contexts, templates = [], [], {}
        for k, (context, gen_kwargs, doc_to_visual, doc_id, task, split) in enumerate(r.args for r in requests):
            visuals = doc_to_visual(self.task_dict[task][split][doc_id])
            video = visuals[0] if isinstance(visuals, list) else visuals
            limit = int(gen_kwargs.get("max_new_tokens", MAX_NEW_TOKENS))
            prompt = gen_kwargs.get(PROMPT_KEY)
            templates[prompt] = request_template(gen_kwargs)
            groups.setdefault((str(video), limit, prompt), []).append(k)
            texts.append(context)
            contexts.append((context, gen_kwargs))
        answers: list[str | None] = [None] * len(requests)
        for (video, limit, prompt), members in groups.items():
            for k, answer in zip(members, self.pipeline.ask_video(video, [texts[k] for k in members], limit,
                                                                 self.batch_size_per_gpu,
                                                                 template=templates[prompt])):
                answers[k] = answer
                self.cache_hook.add_partial("generate_until", contexts[k], answer)
        return answers

    def loglikelihood(self, requests):
        raise NotImplementedError("VSI-Bench, VSTI-Bench, ScanQA and SQA3D are generation tasks")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("VSI-Bench, VSTI-Bench, ScanQA and SQA3D are single-turn")
