#!/usr/bin/env bash
# The one device check of the training-throughput benchmark, for a lent GPU machine: at most 520 s.
# From the repo root:   bash bench/gpu_checks.sh
#   (device tool: run(command="bash bench/gpu_checks.sh", timeout_s=580); results land in $OUT)
# Dry run on the CPU (same code paths, tiny sizes, jsonschema and snakemake blocked as on the GPU image):
#   BENCH_DRY=1 bash bench/gpu_checks.sh          (about 2 minutes on 2 cores; output in a temp dir or $OUT)
#
# Writes, rewritten after every measurement so that a hard stop keeps what was measured:
#   $OUT/train_throughput_cuda_<gpu>.json  step 1: seed loop, single, packed K = 1, 8, 32, 128 for lenet and vgg11bn at
#                                    widths 1 and 4 (RunSpec's default precision, tf32), then bf16 and fp32 at
#                                    the largest K of each (arch, width); TFLOP/s and fraction of the device's peak
#   $OUT/paper_projection_cuda_<gpu>.json  step 2: projected hours of config/paper.yaml on this device, at the
#                                    config's precision (tf32), or at $PROJ_PRECISION when set (e.g. bf16)
#   $OUT/modularity_<tag>.json       step 0: the modularity stage per snapshot against the dense/networkx style
#   $OUT/pack_memory_<tag>.json      step 0b: per paper-grid block, pack size from the estimate and from the
#                                    measured line (probe steps at K = 1, 2), checked by a step at that size
#   $OUT/epoch_overhead_<tag>.json   step 0c: a LeNet pack's wall time split into steps, evaluation, snapshots,
#                                    curves and checkpoints (cProfile)
#   $OUT/evidence_gpu_<tag>.json     step 1b: training wall time of config/evidence.yaml (at most 120 s)
#   $OUT/gpu_log.txt                 everything printed
# Without $OUT (e.g. on a workstation) they go to bench/results/.
#
# Python: $PY if set, else .venv/bin/python when it is there and sees the GPU, else python3 (the GPU image's
# Python has torch, torchvision, pandas, safetensors, scikit-learn, PyYAML; not jsonschema or snakemake, which
# the benchmark does without). Every step has its own timeout; step 2 gets whatever step 1 left of the 520 s.
set -uo pipefail
cd "$(dirname "$0")/.."
TOTAL=${BENCH_TOTAL:-520}  # hard stop in seconds; less when the lease has less left
if [ -n "${BENCH_DRY:-}" ]; then
    OUT="${OUT:-$(mktemp -d /tmp/gpu-checks-dry.XXXXXX)}"
    DEVICE=cpu
    PY="${PY:-.venv/bin/python}"
    BLOCK="$(mktemp -d /tmp/gpu-checks-block.XXXXXX)"  # modules the GPU image lacks, made unimportable
    for m in jsonschema snakemake; do
        mkdir -p "$BLOCK/$m"
        echo "raise ModuleNotFoundError(\"No module named '$m' (blocked: BENCH_DRY simulates the GPU image)\", name='$m')" \
            > "$BLOCK/$m/__init__.py"
    done
    export PYTHONPATH="$BLOCK${PYTHONPATH:+:$PYTHONPATH}"
    TABLE=(--archs lenet vgg --widths 1 --ks 1 2 --images 256 --test-images 64 --workers 0 --time-budget 40
           --config-grace 10 --profile-steps 1 --precisions bf16 fp32 --precision-budget 20)
    PROJ=(--proj-warmup 1 --proj-steps 2 --proj-eval-images 64 --config-grace 5 --proj-blocks lenet:1 vgg11bn:1)
    PROJ_BUDGET_CAP=25
    MOD=(--n 200 --repeats 1)
    PACKMEM=(--blocks 1)
    EO_K=4
else
    OUT="${OUT:-bench/results}"
    DEVICE=cuda
    if [ -z "${PY:-}" ]; then
        PY=python3
        if [ -x .venv/bin/python ] && .venv/bin/python -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
            PY=.venv/bin/python
        fi
    fi
    # modularity <= 90 s, pack memory <= 60 s and epoch overhead <= 45 s first; main table 150 s + 15 s grace, precision variants 60 s + 15 s (bf16 first), start-up and data ~20 s: <= 265 s
    TABLE=(--archs lenet vgg --widths 1 4 --ks 1 8 32 128 --images 10000 --test-images 256 --workers 4
           --time-budget 150 --config-grace 15 --profile-steps 10 --precisions bf16 fp32 --precision-budget 60)
    PROJ=(--proj-warmup 5 --proj-steps 30 --proj-eval-images 2048 --config-grace 15)
    PROJ_BUDGET_CAP=400
    MOD=(--n 2000 --repeats 3)
    PACKMEM=()
fi
mkdir -p "$OUT"
LOG="$OUT/gpu_log.txt"
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1
SECONDS=0
echo "== $(date -u '+%F %T') UTC; device $DEVICE; python $PY; $(nproc) CPUs; out $OUT; commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
TAG=$DEVICE
if [ "$DEVICE" = cuda ]; then
    timeout 15 nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv || echo "nvidia-smi failed ($?)"
    gpu=$(timeout 10 nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 | grep -oiE 'h100|h200|a100' | head -1)
    TAG="cuda${gpu:+_${gpu,,}}"  # e.g. cuda_h100: the file names say which card measured them
fi

# 0. the modularity stage per snapshot (issue 11: one VGG snapshot at N = 2000 under a second on a GPU)
timeout 90 "$PY" bench/modularity.py --device "$DEVICE" "${MOD[@]}" --out "$OUT/modularity_$TAG.json"
echo "== step 0 (modularity): exit $? after ${SECONDS}s"

# 0b. pack sizes of the paper grid from estimated against measured memory (issue 13), <= 60 s
timeout 60 "$PY" bench/pack_memory.py --device "$DEVICE" "${PACKMEM[@]}" --out "$OUT/pack_memory_$TAG.json"
echo "== step 0b (pack memory): exit $? after ${SECONDS}s"

# 0c. where a LeNet pack's time goes besides the steps (evaluation, snapshots, curves, checkpoints), <= 45 s
timeout 45 "$PY" bench/epoch_overhead.py --device "$DEVICE" --k "${EO_K:-128}" --out "$OUT/epoch_overhead_$TAG.json"
echo "== step 0c (epoch overhead): exit $? after ${SECONDS}s"

# 1. main table and precision variants
timeout 265 "$PY" bench/train_throughput.py --device "$DEVICE" "${TABLE[@]}" --no-pack-check \
    --machine-label "lent machine, bench/gpu_checks.sh${BENCH_DRY:+ (BENCH_DRY)}" \
    --out "$OUT/train_throughput_$TAG.json"
status=$?
echo "== step 1 (table): exit $status after ${SECONDS}s"

# 1b. the evidence study's training on this device (issue 14: "in minutes on one GPU"), <= 120 s
timeout 120 "$PY" bench/evidence_gpu.py --device "$DEVICE" ${BENCH_DRY:+--runs 2} --out "$OUT/evidence_gpu_$TAG.json"
echo "== step 1b (evidence study training): exit $? after ${SECONDS}s"

# 2. projection of the paper grid with what is left (start-up, planning and grace take ~40 s of it)
left=$((TOTAL - SECONDS))
budget=$((left - 45 < PROJ_BUDGET_CAP ? left - 45 : PROJ_BUDGET_CAP))
if [ "$budget" -ge 20 ]; then
    timeout "$left" "$PY" bench/train_throughput.py --device "$DEVICE" --no-table --project config/paper.yaml \
        --project-budget "$budget" "${PROJ[@]}" ${PROJ_PRECISION:+--project-precision "$PROJ_PRECISION"} \
        --machine-label "lent machine, bench/gpu_checks.sh${BENCH_DRY:+ (BENCH_DRY)}" \
        --out "$OUT/paper_projection_$TAG${PROJ_PRECISION:+_$PROJ_PRECISION}.json"
    s2=$?
    echo "== step 2 (projection, budget ${budget}s): exit $s2 after ${SECONDS}s"
    [ "$status" -eq 0 ] && status=$s2
else
    echo "== step 2 (projection) skipped: only ${left}s left"
fi
echo "== done after ${SECONDS}s; files in $OUT:"
ls -la "$OUT"
exit "$status"
