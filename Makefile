# The two commands of the README: `make demo` and `make test`.
PY ?= python3

.PHONY: setup demo test bench lint

setup:  ## ARM toolchain + QEMU (apt-get, if missing) and the package with test extras (pip)
	PY=$(PY) bash scripts/setup.sh

demo: setup  ## compile a bundled model, run it on the host and in QEMU, print the comparison
	$(PY) bench/demo.py

test: setup  ## the whole test suite (CI runs this)
	$(PY) -m pytest -q -ra

bench: setup  ## every benchmark whose figures are in the README (slow: about three hours)
	$(PY) bench/memory_planners.py --markdown
	$(PY) bench/kernel_backends.py
	$(PY) bench/int8.py --seeds 5
	$(PY) bench/tflm_vs_litert.py
	$(PY) bench/patch.py
	$(PY) bench/planner.py --front
	$(PY) bench/mobilenet_qemu.py
	$(PY) bench/vs_tflm.py
	$(PY) bench/vs_tflm.py --target cortex-m7
	$(PY) bench/vs_tflm.py --target cortex-m33
	$(PY) bench/fuzz.py --cases 500 --seed 0 --jobs 2
	$(PY) bench/tune.py
	$(PY) bench/demo.py

LINTED = tvm_patch passes tune targets tests bench scripts

lint: setup  ## ruff check and ruff format --check (CI runs this before the tests)
	$(PY) -m ruff check $(LINTED)
	$(PY) -m ruff format --check $(LINTED)
