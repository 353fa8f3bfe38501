"""Reconstructive instruction tuning (docs/design.md, model §5): LoRA on Qwen2, fusion block and projector fully
trained, SigLIP and CUT3R frozen; one loop for a CPU, several GPUs, or DeepSpeed ZeRO-2 through accelerate."""
