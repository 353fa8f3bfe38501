"""VLM-3R as an lmms-eval model: ``--model vlm3r --model_args pretrained=DIR,cut3r=FILE,base=DIR``."""

from __future__ import annotations

from lmms_eval.api.model import lmms

from vlm3r.model.pipeline import Vlm3rPipeline
from vlm3r.utils.devices import check_device, torch_dtype


class Vlm3rLmms(lmms):
    def __init__(self, pretrained: str, cut3r: str | None = None, base: str | None = None, device: str = "cpu",
                 dtype: str = "bf16", max_frames_num: int = 32, batch_size: int = 1, vision_tower: str | None = None,
                 **kwargs) -> None:
        super().__init__()
        self.pipeline = Vlm3rPipeline.from_pretrained(pretrained, cut3r, base, torch_dtype(str(dtype), "dtype"),
                                                      check_device(device, "device"), int(max_frames_num),
                                                      vision_tower)
        self.batch_size_per_gpu = int(batch_size)

    def generate_until(self, requests) -> list[str]:
        """One answer per request: the video from ``doc_to_visual``, the text from ``doc_to_text`` after
        ``<image>\\n``, greedy decoding with the task's ``max_new_tokens``."""
        answers = []
        for context, gen_kwargs, doc_to_visual, doc_id, task, split in [r.args for r in requests]:
            visuals = doc_to_visual(self.task_dict[task][split][doc_id])
            video = visuals[0] if isinstance(visuals, list) else visuals
            answer = self.pipeline.ask(video, context, int(gen_kwargs.get("max_new_tokens", 16)))
            answers.append(answer)
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), answer)
        return answers

    def loglikelihood(self, requests):
        raise NotImplementedError("VSI-Bench and VSTI-Bench are generation tasks")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("VSI-Bench and VSTI-Bench are single-turn")
