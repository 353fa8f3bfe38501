"""The prepared GPU check (benchmarks/device_check.sh) runs on the CPU with --tiny, so that it never rots: every
section, in fp32 (bf16 on a CPU without bf16 units is many times slower; bf16 is what the GPU run checks)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from helpers import qwen_tokenizer

from vlm3r.model.config import Vlm3rConfig
from vlm3r.model.modeling_vlm3r import Vlm3rModel
from vlm3r.model.prompt import chat_prompt, encode, video_question

ROOT = Path(__file__).resolve().parents[1]


def test_device_check_runs_on_the_cpu_at_the_tiny_size(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--tiny", "--device", "cpu"],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((tmp_path / "device_check.json").read_text())
    sections = report["sections"]
    assert sorted(sections) == ["cut3r", "parity", "training", "vlm3r"]
    assert not [name for name, values in sections.items() if "error" in values]
    # parity on the CPU: no comparison of the CPU with itself, only the reference answer, which is the tiny
    # model's greedy answer computed here
    assert sorted(sections["parity"]) == ["cpu_answer", "section_s"] and report["dtype"] == "fp32"
    torch.manual_seed(0)
    model = Vlm3rModel(Vlm3rConfig.tiny()).eval()
    pixels = (torch.rand(4, 3, 84, 84, generator=torch.Generator().manual_seed(1)) * 2 - 1)
    prompt = encode(qwen_tokenizer(), chat_prompt(*video_question("These are frames of a video.")))
    with torch.no_grad():
        answer = model.generate([prompt], [model.visual_embeddings(pixels)], 16)[0]
    assert sections["parity"]["cpu_answer"] == answer
    vlm3r = sections["vlm3r"]
    assert vlm3r["visual_tokens"] == 32 * 12 and vlm3r["decoded_tokens"] == 16  # tiny: 3 x (3 + 1) per frame
    cut3r = sections["cut3r"]
    assert (cut3r["frames"], cut3r["size"], cut3r["dtype"]) == (32, 96, "fp32")
    assert vlm3r["dtype"] == sections["training"]["dtype"] == "fp32"
    # LoRA r 128 on 7 projections of 2 layers (48 wide, KV 24, MLP 96): 2 x 98,304; fusion block 7,584;
    # projector 32 -> 48 -> 48: 3,936
    assert sections["training"]["trainable_parameters"] == 2 * 98_304 + 7_584 + 3_936
    assert sections["training"]["steps"] == 3
