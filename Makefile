# Two entry points for a fresh machine:
#   make demo   set up .venv, port the VGG19 weights into ~/.cache/jaxstyle, stylise scikit-image's cat with every shipped style
#   make test   the same set-up, then the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The ported VGG19 lives in the user cache (jaxstyle.cache.cache_dir; jaxstyle.vgg_weights.vgg_weights_path).
CACHE := $(or $(JAXSTYLE_CACHE),$(if $(XDG_CACHE_HOME),$(XDG_CACHE_HOME)/jaxstyle,$(HOME)/.cache/jaxstyle))
VGG := $(or $(JAXSTYLE_VGG_WEIGHTS),$(CACHE)/vgg19.npz)
DATA ?= $(abspath ../shared/data)
export JAXSTYLE_DATA ?= $(DATA)
export JAXSTYLE_STYLES_DIR ?= $(if $(wildcard $(DATA)/styles),$(DATA)/styles,)

.PHONY: setup demo test check lint clean wheel-test bench-quick

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

$(VGG): | $(STAMP)
	$(PY) -m jaxstyle.cli.port_weights --out $@

setup: $(STAMP) $(VGG)

demo: setup
	mkdir -p out
	bin/stylize $$($(PY) -c 'import os, skimage; print(os.path.join(os.path.dirname(skimage.__file__), "data", "chelsea.png"))') \
		--sheet --out out
	@echo "open out/chelsea_sheet.png (the photo and every shipped style side by side)"

test: setup
	$(PY) -m pytest -q

check: setup  # the quick loop: the tests not marked slow, every bench's --quick run (a few minutes), ruff and mypy
	$(PY) -m pytest -q -m "not slow"
	$(PY) -m pytest -q -m slow tests/test_bench_quick.py
	$(VENV)/bin/ruff check jaxstyle tests bench
	$(VENV)/bin/mypy

bench-quick: setup  # every bench module's --quick smoke run (make check runs them all too)
	$(PY) -m pytest -q tests/test_bench_quick.py

wheel-test: setup  # build the wheel, install it into a fresh venv, use it from an empty folder
	PY=$(PY) .ci/wheel_test.sh

lint: setup
	$(VENV)/bin/ruff check jaxstyle tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) out .pytest_cache
