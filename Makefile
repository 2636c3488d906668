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
	$(HW) space show nas/kws_tcresnet.py:kws_tcresnet --seed 1 --save $(DEMO_DIR)/kws_arch.json
	$(HW) space show nas/image_cnn.py:image_cnn --seed 2 --space-arg max_macs=500000
	$(HW) search nas/kws_tcresnet.py:kws_tcresnet --study $(DEMO_DIR)/kws-cost --strategy nsga2 \
	  --budget 60 --population 16 --objective macs:min --objective peak_memory:min \
	  --constraint "weights<=20000"
	$(HW) search --study $(DEMO_DIR)/kws-cost --show --plot $(DEMO_DIR)/kws-cost-front.png \
	  | tail -n 2
	$(HW) search nas/image_cnn.py:image_cnn --study $(DEMO_DIR)/digits --strategy aging \
	  --budget 16 --population 8 --dataset digits --epochs 8 --qat-epochs 2 \
	  --objective error:min --objective macs:min --constraint "macs<=200000"
	# keyword spotting: 20k synthesised clips (cached), TC-ResNet8 with 8-bit QAT
	$(HW) train nas/kws_tcresnet8.json --dataset kws --epochs 15 --qat-epochs 4 \
	  --out $(DEMO_DIR)/kws-tcresnet8
	$(HW) infer $(DEMO_DIR)/kws-tcresnet8/qgraph.json \
	  --input $(DEMO_DIR)/kws-tcresnet8/test_inputs.npy --output $(DEMO_DIR)/kws-logits.npy
	$(HW) export-onnx $(DEMO_DIR)/kws-tcresnet8/qgraph.json -o $(DEMO_DIR)/kws-tcresnet8.onnx
	# its accelerator: Verilog, Program, then the test inputs through the RTL (Verilator)
	$(HW) generate $(DEMO_DIR)/kws-tcresnet8/qgraph.json --out $(DEMO_DIR)/kws-hw
	$(HW) simulate $(DEMO_DIR)/kws-hw --input $(DEMO_DIR)/kws-tcresnet8/test_inputs.npy \
	  --output $(DEMO_DIR)/kws-hw-logits.npy --report $(DEMO_DIR)/kws-hw-report.json
	cmp $(DEMO_DIR)/kws-hw-logits.npy $(DEMO_DIR)/kws-logits.npy && echo "RTL == interpreter"
	# its firmware (C99; host and RV32) on the simulated SoC, with and without the accelerator
	$(HW) firmware $(DEMO_DIR)/kws-hw --out $(DEMO_DIR)/kws-fw
	$(HW) soc-sim $(DEMO_DIR)/kws-fw --input $(DEMO_DIR)/kws-tcresnet8/test_inputs.npy \
	  --output $(DEMO_DIR)/kws-soc-logits.npy --report $(DEMO_DIR)/kws-soc-report.json
	cmp $(DEMO_DIR)/kws-soc-logits.npy $(DEMO_DIR)/kws-logits.npy && echo "SoC == interpreter"
	$(HW) soc-sim $(DEMO_DIR)/kws-fw --input $(DEMO_DIR)/kws-tcresnet8/test_inputs.npy \
	  --limit 1 --no-accel --output $(DEMO_DIR)/kws-soc-ref-logits.npy \
	  --report $(DEMO_DIR)/kws-soc-ref-report.json

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not sim and not slow"

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) benchmarks/nas_sampling.py
	$(PY) benchmarks/qat.py
	$(PY) benchmarks/accel.py
	$(PY) benchmarks/soc.py

clean:
	rm -rf runs build rtl/build .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
