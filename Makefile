# Newcomer entry points: `make demo` (set up + run the demo) and `make test` (set up + all checks;
# `make test-fast` leaves out the slow tests).
PYTHON ?= python3
# Where pip takes torch from: PyPI's Linux wheel brings CUDA (gigabytes; what a GPU machine wants).
# A machine without an NVIDIA GPU: make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
ARGS ?=
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.install-stamp
APT_PACKAGES := python3-venv libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 libosmesa6

.PHONY: install test test-fast test-lower lint demo bench clean

install: $(STAMP)

# Re-runs only when the dependency set changes. System packages are installed when we are root
# (CI, containers) and some are missing; otherwise `rdance doctor` says which ones are missing.
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "realisdance-cli needs Python 3.11 or newer: make $(or $(MAKECMDGOALS),install) PYTHON=python3.11"; exit 1; }
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; } || \
		echo "warning: could not install $(APT_PACKAGES); rdance doctor says what is missing"; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@echo "installing realisdance-cli and its dependencies into $(VENV) (a few minutes)"
	$(if $(TORCH_INDEX),$(BIN)/pip install -q -c constraints.txt --index-url $(TORCH_INDEX) torch)
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,train]"
	@# pyrender pins PyOpenGL 3.1.0, which fails under OSMesa: replace it without dependencies.
	$(BIN)/pip install -q --no-deps "PyOpenGL==3.1.10"
	touch $(STAMP)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

# The whole suite, as CI runs it; both targets list the 15 slowest tests (pyproject's addopts).
test: lint
	$(BIN)/pytest

# Everything but the tests marked slow (each over about 5 s): for quick checks while editing.
test-fast: lint
	$(BIN)/pytest -m "not slow"

# Every dependency at its declared lower bound (constraints-lower.txt) in a fresh venv: the fast
# tests, and the one slow test that uses TensorBoard (the [train] extra).
LOWER := .venv-lower
test-lower:
	rm -rf $(LOWER)
	$(PYTHON) -m venv $(LOWER)
	$(LOWER)/bin/pip install -q --upgrade pip
	$(if $(TORCH_INDEX),$(LOWER)/bin/pip install -q -c constraints-lower.txt --index-url $(TORCH_INDEX) torch)
	$(LOWER)/bin/pip install -q -c constraints-lower.txt -e ".[dev,train]"
	$(LOWER)/bin/pip install -q --no-deps "PyOpenGL==3.1.10"
	$(LOWER)/bin/pytest -m "not slow"
	$(LOWER)/bin/pytest tests/test_training.py::test_an_original_config_trains_validates_and_logs

# Online: downloads the weights and the authors' demo sequence, then animates it into demo/out.
# Offline (no hub reachable, HF_HUB_OFFLINE=1): the synthetic dancer's skeleton video, exit code 0.
demo: install
	$(BIN)/rdance demo $(ARGS)
	@echo "rdance is $(BIN)/rdance (or run . $(BIN)/activate, then rdance --help)"

bench: install
	$(BIN)/python benchmarks/video_io.py
	$(BIN)/python benchmarks/dwpose.py
	RDANCE_GL=osmesa $(BIN)/python benchmarks/render.py
	RDANCE_GL=egl $(BIN)/python benchmarks/render.py
	RDANCE_GL=osmesa $(BIN)/python benchmarks/render_poses.py
	$(BIN)/python benchmarks/smoothing.py
	$(BIN)/python benchmarks/hamer.py
	$(BIN)/python benchmarks/smplerx.py
	$(BIN)/python benchmarks/animate.py
	$(BIN)/python benchmarks/dit.py
	$(BIN)/python benchmarks/eval.py
	$(BIN)/python benchmarks/train.py

clean:
	rm -rf $(VENV) demo/out .pytest_cache .mypy_cache .ruff_cache
