# Two commands for a fresh machine:
#   make demo   set up .venv and run the main job on built-in defaults
#   make test   set up .venv and run ruff, the docs build and the test suite
#   make docs   build the manual (docs/ -> site/) with mkdocs build --strict
# torch is installed first and pinned (2.13.0, the CPU build on this machine's
# disk) so pip never pulls a multi-GB CUDA build; see README for GPU installs.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo_out

.PHONY: setup test demo lint docs clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	# the pin again: timm (via dynamic-network-architectures) pulls torchvision, whose newest release
	# would otherwise upgrade torch to a CUDA build
	$(BIN)/python -m pip install --quiet -e ".[dev,docs]" "$(TORCH)"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check brats_seg tests benchmarks data_scripts
	$(BIN)/python -m brats_seg.cli.docgen --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

demo: $(STAMP)
	$(BIN)/brats-seg quickstart --out $(DEMO_OUT)

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: $(STAMP)
	$(BIN)/ruff check brats_seg tests benchmarks data_scripts

clean:
	rm -rf $(VENV) $(DEMO_OUT) build site *.egg-info
