# Two entry points for a fresh machine:
#   make demo   set up .venv, port the VGG19 weights, stylise a photo that ships with scikit-image
#   make test   the same set-up, then the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
VGG := weights/vgg19.npz
DATA ?= $(abspath ../shared/data)
export JAXSTYLE_DATA ?= $(DATA)
export JAXSTYLE_STYLES_DIR ?= $(if $(wildcard $(DATA)/styles),$(DATA)/styles,)

.PHONY: setup demo test lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

$(VGG): | $(STAMP)
	$(PY) -m jaxstyle.cli.port_weights

setup: $(STAMP) $(VGG)

demo: setup
	mkdir -p out
	bin/stylize $$($(PY) -c 'import os, skimage; print(os.path.join(os.path.dirname(skimage.__file__), "data", "chelsea.png"))') \
		--style starry_night --size 256 --iterations 200 --out out/chelsea_starry_night.png --report out/demo.json

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check jaxstyle tests bench

clean:
	rm -rf $(VENV) out .pytest_cache
