#!/usr/bin/env bash
# The benchmark on one CUDA GPU, in under five minutes: training and inference at
# 256 px with batch 16, ours against the original loop, plus the precision check.
# Results go to bench/gpu/RESULTS.md and bench/gpu/results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m bench --device cuda --sizes 256 --batch-size 16 --rounds 3 --recordings 4 \
    --accuracy-epochs 8 --out bench/gpu "$@"
