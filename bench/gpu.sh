#!/usr/bin/env bash
# The benchmark on one CUDA GPU, planned for under six minutes (not yet timed): training
# and inference at 256 px, batch 16, ours against the original loop, as a share of the
# matmul peak measured in the same run; variants of the training step (precision, memory
# format, torch.compile, batch size), run.py's first epoch against its steady ones, the
# top operations by GPU time, and the precision check. Results go to bench/gpu/RESULTS.md
# and bench/gpu/results.json.
# Later flags win: `bash bench/gpu.sh --device cpu --quick --out /tmp/b` tries it on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m bench --device cuda --sizes 256 --batch-size 16 --rounds 3 --recordings 4 \
    --accuracy-epochs 8 --out bench/gpu "$@"
