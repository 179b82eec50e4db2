# Two commands for a fresh machine:
#   make demo   set up .venv and run the main job on built-in defaults
#   make test   set up .venv and run the test suite
# torch is installed first and pinned (2.13.0, the CPU build on this machine's
# disk) so pip never pulls a multi-GB CUDA build; see README for GPU installs.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo_out

.PHONY: setup test demo lint clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check brats_seg tests benchmarks data_scripts
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

demo: $(STAMP)
	$(BIN)/brats-seg quickstart --out $(DEMO_OUT)

lint: $(STAMP)
	$(BIN)/ruff check brats_seg tests benchmarks data_scripts

clean:
	rm -rf $(VENV) $(DEMO_OUT) build *.egg-info
