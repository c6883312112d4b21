#!/usr/bin/env bash
# The one device check of the training-throughput benchmark, for a lent GPU machine: at most 560 s.
# From the repo root:   bash bench/gpu_checks.sh
#   (device tool: run(command="NETDYN_COMMIT=<git rev-parse --short HEAD, run here> bash bench/gpu_checks.sh",
#    timeout_s=590); results land in $OUT. The lent machine's copy of the tree has no .git: without
#    NETDYN_COMMIT the JSON files cannot say which commit measured them.)
# Dry run on the CPU (same code paths, tiny sizes; jsonschema, snakemake, graph-tool and xgboost blocked: the GPU
# image has none of them):
#   BENCH_DRY=1 bash bench/gpu_checks.sh          (about 2 minutes on 2 cores; output in a temp dir or $OUT)
#
# In order of what the open goals need most (issue 13: the paper grid in <= 8 h on one GPU), each file
# rewritten after every measurement so that a hard stop keeps what was measured:
#   $OUT/pack_layout_<tag>.json      step 0: every pack layout checked on the device against the members' own
#                                    models (float64; side streams, im2col) -- auto must not pick a wrong one
#   $OUT/paper_projection_<tag>_bf16.json  step 1: projected hours of config/paper.yaml in bf16, CIFAR-10 blocks
#                                    measured at their pack sizes (widest first) in the layout training.pack_layout:
#                                    auto picks (the probe's step time of every layout is kept: the per-layout
#                                    table); FashionMNIST blocks estimated from them, unmeasured narrower widths
#                                    bounded by the wider ones
#   $OUT/train_throughput_<tag>.json step 2: seed loop, single and K = 32 packs for LeNet, VGG-11-BN, AlexNet and
#                                    ResNet-20 at widths 1 and 4 (the 15x goal), then the compiled K = 32 pack;
#                                    TABLE_WIDTHS="2 8" measures other widths, into train_throughput_<tag>_w2-8.json
#   $OUT/pack_memory_<tag>.json      step 3: per paper-grid block, pack size from the estimate and from the
#                                    measured line (probe steps at K = 1, 2), checked by a step at that size
#   $OUT/epoch_overhead_<tag>.json   step 4: a LeNet pack's wall time split into steps, evaluation, snapshots,
#                                    curves and checkpoints (cProfile), files written in place vs on the writer thread
#   $OUT/modularity_<tag>.json       step 5: the modularity stage per snapshot against the dense/networkx style
#                                    (issue 11's GPU number)
#   $OUT/evidence_gpu_<tag>.json     step 6: training wall time of config/evidence.yaml, with what is left
#   $OUT/gpu_log.txt                 everything printed
# Without $OUT (e.g. on a workstation) they go to bench/results/. <tag> is cuda_<gpu>, e.g. cuda_h200.
#
# Python: $PY if set, else .venv/bin/python when it is there and sees the GPU, else python3 (the GPU image's
# Python has torch, torchvision, pandas, safetensors, scikit-learn, PyYAML, networkx; not jsonschema, snakemake,
# graph-tool or xgboost, which the benchmark does without). Every step has its own timeout (together 555 s); the
# evidence step gets what the others leave of TOTAL.
set -uo pipefail
cd "$(dirname "$0")/.."
TOTAL=${BENCH_TOTAL:-540}  # hard stop in seconds; less when the lease has less left
if [ -n "${BENCH_DRY:-}" ]; then
    OUT="${OUT:-$(mktemp -d /tmp/gpu-checks-dry.XXXXXX)}"
    DEVICE=cpu
    PY="${PY:-.venv/bin/python}"
    BLOCK="$(mktemp -d /tmp/gpu-checks-block.XXXXXX)"  # modules the GPU image lacks, made unimportable
    for m in jsonschema snakemake graph_tool xgboost; do
        mkdir -p "$BLOCK/$m"
        echo "raise ModuleNotFoundError(\"No module named '$m' (blocked: BENCH_DRY simulates the GPU image)\", name='$m')" \
            > "$BLOCK/$m/__init__.py"
    done
    export PYTHONPATH="$BLOCK${PYTHONPATH:+:$PYTHONPATH}"
    MOD=(--n 200 --repeats 1)
    PACKMEM=(--blocks 1)
    PROJ=(--proj-warmup 1 --proj-steps 2 --proj-eval-images 64 --config-grace 5 --proj-blocks lenet:1 vgg11bn:1
          --proj-datasets cifar10 --project-budget 25)
    TABLE=(--archs lenet resnet20 --widths 1 --ks 1 2 --images 256 --test-images 64 --workers 0 --time-budget 40
           --config-grace 10 --variants per_member_channels_last --variant-budget 20)
    EO_K=4
    EO_REPEATS=1
    EVID=(--runs 2)
    LAYOUT=(--blocks lenet:1 --ks 2 --steps 1 1 --check-members 3)  # timing too: exercises that code
else
    OUT="${OUT:-bench/results}"
    DEVICE=cuda
    if [ -z "${PY:-}" ]; then
        PY=python3
        if [ -x .venv/bin/python ] && .venv/bin/python -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
            PY=.venv/bin/python
        fi
    fi
    MOD=(--n 2000 --repeats 1)
    PACKMEM=()
    # CIFAR-10 blocks widest first, each: layout probe (one pack, 6 layouts x 7 steps), 3 + 10 steps, evaluation;
    # (the 2026-11-28 H200 run, tf32, 5 + 30 steps, no probe: 5 wide blocks in its 132 s budget)
    PROJ=(--proj-warmup 3 --proj-steps 10 --proj-eval-images 2048 --config-grace 15 --proj-datasets cifar10
          --project-budget 220)
    # 5120 images = 40 full batches: no short last batch, so a compiled pack compiles one training shape; the
    # compile variant gets 45 s (+ 15 s grace), since its warm-up epoch holds the whole torch.compile
    TABLE=(--archs lenet vgg alexnet resnet20 --widths ${TABLE_WIDTHS:-1 4} --ks 1 32 --images 5120
           --test-images 256 --workers 4 --time-budget 60 --config-grace 15 --profile-steps 10
           --variants compile --variant-budget 45)
    EO_K=128
    EO_REPEATS=2
    EVID=()
    # the check alone, at K = 10 (> 8 side streams): the projection's probes time the layouts of every block
    LAYOUT=(--check-only)
fi
mkdir -p "$OUT"
LOG="$OUT/gpu_log.txt"
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1
SECONDS=0
echo "== $(date -u '+%F %T') UTC; device $DEVICE; python $PY; $(nproc) CPUs; out $OUT; commit $(git rev-parse --short HEAD 2>/dev/null || echo "${NETDYN_COMMIT:-?}")"
TAG=$DEVICE
if [ "$DEVICE" = cuda ]; then
    timeout 15 nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv || echo "nvidia-smi failed ($?)"
    gpu=$(timeout 10 nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 | grep -oiE 'h100|h200|a100' | head -1)
    TAG="cuda${gpu:+_${gpu,,}}"  # e.g. cuda_h100: the file names say which card measured them
fi

# 0. every pack layout correct on this device (exit 1 if a layout mixes members), <= 40 s (4 s on the CPU)
timeout 40 "$PY" bench/pack_layout.py --device "$DEVICE" "${LAYOUT[@]}" --out "$OUT/pack_layout_$TAG.json"
s0=$?
echo "== step 0 (pack layout check): exit $s0 after ${SECONDS}s"

LABEL="lent machine, bench/gpu_checks.sh${BENCH_DRY:+ (BENCH_DRY)}"
# 1. projection of the paper grid in bf16 with the auto pack layout, <= 270 s (budget 220 s + planning + grace).
# A committed projection of this device (an earlier GPU session's) is resumed: its measurements are kept and only
# the rest is measured. If it cannot be (other settings: exit 3), the projection starts afresh in the time left.
# BENCH_DRY resumes a file without a projection, so that the dry run takes the fallback path.
PRIOR="bench/results/paper_projection_${TAG}_bf16.json"
[ -n "${BENCH_DRY:-}" ] && PRIOR="$BLOCK/no_projection.json" && echo '{}' > "$PRIOR"
RESUME=()
[ -f "$PRIOR" ] && RESUME=(--project-resume "$PRIOR")
start=$SECONDS
project() {  # $1: seconds; the rest: more arguments
    timeout "$1" "$PY" bench/train_throughput.py --device "$DEVICE" --no-table --project config/paper.yaml \
        --project-precision bf16 "${PROJ[@]}" "${@:2}" --machine-label "$LABEL" \
        --out "$OUT/paper_projection_${TAG}_bf16.json"
}
project 270 "${RESUME[@]}"
status=$?
if [ "$status" -eq 3 ]; then
    echo "== step 1: $PRIOR cannot be resumed (see above); measuring afresh"
    project $((270 - (SECONDS - start)))
    status=$?
fi
echo "== step 1 (projection, bf16): exit $status after ${SECONDS}s"

# 2. seed loop against packs for every architecture at widths 1 and 4 (or $TABLE_WIDTHS), then compiled packs, <= 140 s
TABLE_OUT="$OUT/train_throughput_$TAG${TABLE_WIDTHS:+_w${TABLE_WIDTHS// /-}}.json"
timeout 140 "$PY" bench/train_throughput.py --device "$DEVICE" "${TABLE[@]}" --no-pack-check \
    --machine-label "$LABEL" --out "$TABLE_OUT"
s2=$?
echo "== step 2 (table): exit $s2 after ${SECONDS}s"
[ "$status" -eq 0 ] && status=$s2
[ "$status" -eq 0 ] && [ "$s0" -eq 1 ] && status=1  # a layout that mixes members (a timeout, 124, is not)

# 3. pack sizes of the paper grid from estimated against measured memory, <= 35 s
timeout 35 "$PY" bench/pack_memory.py --device "$DEVICE" "${PACKMEM[@]}" --out "$OUT/pack_memory_$TAG.json"
echo "== step 3 (pack memory): exit $? after ${SECONDS}s"

# 4. where a LeNet pack's time goes besides the steps (evaluation, snapshots, curves, checkpoints), <= 25 s
timeout 25 "$PY" bench/epoch_overhead.py --device "$DEVICE" --k "$EO_K" --repeats "$EO_REPEATS" \
    --out "$OUT/epoch_overhead_$TAG.json"
echo "== step 4 (epoch overhead): exit $? after ${SECONDS}s"

# 5. the modularity stage per snapshot (issue 11: one VGG snapshot at N = 2000 under a second on a GPU), <= 45 s
timeout 45 "$PY" bench/modularity.py --device "$DEVICE" "${MOD[@]}" --out "$OUT/modularity_$TAG.json"
echo "== step 5 (modularity): exit $? after ${SECONDS}s"

# 6. the evidence study's training on this device (issue 14: "in minutes on one GPU"), with what is left
left=$((TOTAL - SECONDS - 5))
if [ "$left" -ge 20 ]; then
    timeout "$left" "$PY" bench/evidence_gpu.py --device "$DEVICE" "${EVID[@]}" --out "$OUT/evidence_gpu_$TAG.json"
    echo "== step 6 (evidence study training, ${left}s): exit $? after ${SECONDS}s"
else
    echo "== step 6 (evidence study training) skipped: only ${left}s left"
fi
echo "== done after ${SECONDS}s; files in $OUT:"
ls -la "$OUT"
exit "$status"
