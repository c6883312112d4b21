#!/usr/bin/env bash
# The one device check of bench/train_throughput.py, for a lent GPU machine (about 7 minutes; 8 at most).
# From the repo root:   bash bench/gpu_checks.sh        (the device tool: run(command="bash bench/gpu_checks.sh",
#                                                         timeout_s=540); results land in $OUT)
# Writes $OUT/train_throughput_cuda.json and $OUT/gpu_log.txt (everything printed). Without $OUT (e.g. on a
# workstation) both go to bench/results/.
#
# Python: $PY if set, else .venv/bin/python when it is there and sees the GPU, else python3 (the GPU image's
# Python holds torch, torchvision, pandas, safetensors, scikit-learn, PyYAML, pytest; not jsonschema, which the
# benchmark does without). Every step has its own timeout, so a slow step cannot eat the lease.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench/results}"
mkdir -p "$OUT"
LOG="$OUT/gpu_log.txt"
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1

if [ -z "${PY:-}" ]; then  # PY=... in the environment overrides
    PY=python3
    if [ -x .venv/bin/python ] && .venv/bin/python -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
        PY=.venv/bin/python
    fi
fi
echo "== $(date -u '+%F %T') UTC; python: $PY; $(nproc) CPUs"
timeout 30 nvidia-smi || echo "nvidia-smi failed ($?)"
timeout 60 "$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))' \
    || echo "torch/cuda check failed ($?)"

# 1. main table (<= 130 s + 20 s grace), A/B of cudnn.benchmark / TF32 at width 1 (<= 25 s + 20 s), projection
#    of the paper grid (<= 140 s + 20 s, planning not counted): about 6.5 minutes at most with start-up;
#    420 s hard stop.
#    The JSON is rewritten after every measurement, so a hard stop still leaves what was measured.
status=0
SECONDS=0
timeout 420 "$PY" bench/train_throughput.py --device cuda \
    --archs lenet vgg --widths 1 4 --ks 1 8 32 128 --images 20000 --test-images 256 --workers 4 \
    --time-budget 130 --config-grace 20 --profile-steps 10 \
    --ab-flags --ab-budget 25 \
    --project config/paper.yaml --project-budget 140 --proj-warmup 5 --proj-steps 200 --proj-seconds 0.6 \
    --proj-eval-images 2048 --no-pack-check \
    --machine-label "lent GPU machine (bench/gpu_checks.sh)" \
    --out "$OUT/train_throughput_cuda.json" || status=$?
echo "== benchmark: exit $status after ${SECONDS}s"

# 2. optional: the packed-vs-alone equivalence tests, where they exist and this Python can run them (they need
#    jsonschema, which the stock GPU image lacks; as written they train on the CPU)
if [ -f tests/test_train.py ] && "$PY" -c 'import jsonschema, pytest' 2>/dev/null; then
    SECONDS=0
    timeout 60 "$PY" -m pytest tests/test_train.py -q -p no:cacheprovider \
        -k "equivalence or packed_equals_solo or solo_run_is_plain_sgd" || echo "== equivalence tests: exit $?"
    echo "== equivalence tests took ${SECONDS}s"
else
    echo "== equivalence tests skipped (no tests/test_train.py, or no jsonschema/pytest for $PY)"
fi
exit "$status"
