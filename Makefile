# hannah-hw: `make demo` runs the main job, `make test` the tests; both set up what they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
HW := $(VENV)/bin/hannah-hw
STAMP := $(VENV)/.setup-done
APT_PACKAGES := gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf cppcheck \
  dataset-fashion-mnist espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k \
  festvox-us-slt-hts postgresql
DEMO_DIR ?= runs/demo
export OMP_NUM_THREADS ?= 2

.PHONY: setup demo test test-fast lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/install-system-deps.sh
	bash scripts/install-system-deps.sh $(APT_PACKAGES)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU build of torch first (pinned); an unpinned torch would pull a CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[hw,onnx,fpga,postgres,dev]'
	touch $(STAMP)

demo: setup
	mkdir -p $(DEMO_DIR)
	$(HW) space show nas/kws_tcresnet.py:kws_tcresnet --seed 1 --space-arg max_blocks=3
	# the whole flow on keyword spotting: a hardware-aware search (QAT error, cycles, energy;
	# iCE40UP5K resources as a constraint), the front confirmed in RTL simulation, the chosen
	# network trained again, its accelerator simulated, its firmware run on the simulated SoC,
	# its bitstream for the iCEBreaker, and the report. Run again, it skips what is done.
	$(HW) flow nas/flow_kws.yaml --out $(DEMO_DIR)/kws
	$(HW) export-onnx $(DEMO_DIR)/kws/train/qgraph.json -o $(DEMO_DIR)/kws/model.onnx
	@echo "report: $(DEMO_DIR)/kws/report.html (and report.md)"

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not sim and not slow"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

bench: setup
	$(PY) benchmarks/nas_sampling.py
	$(PY) benchmarks/qat.py
	$(PY) benchmarks/accel.py
	$(PY) benchmarks/soc.py
	$(PY) benchmarks/fpga.py
	$(PY) benchmarks/flow.py

clean:
	rm -rf runs build .pytest_cache .ruff_cache .import_linter_cache .grimp_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
