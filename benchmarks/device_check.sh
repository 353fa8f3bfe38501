#!/usr/bin/env bash
# The GPU check of a lent device machine, in one call (see benchmarks/device_check.py for the sections):
#   run: bash benchmarks/device_check.sh            -> $OUT/device_check.json (or ./device_check.json) + a table
# It needs only what that machine has (python3 with torch, transformers, peft, safetensors, numpy, pillow):
# nothing is installed, vlm3r is imported from src/. The tests run it on the CPU with --tiny so it never rots.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
out=${OUT:-.}/device_check.json
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
PYTHONUNBUFFERED=1 PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" "$python" benchmarks/device_check.py --out "$out" "$@"
