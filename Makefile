# The two commands of the README: `make demo` and `make test`.
PY ?= python3

.PHONY: setup demo test bench lint

setup:  ## ARM toolchain + QEMU (apt-get, if missing) and the package with test extras (pip)
	PY=$(PY) bash scripts/setup.sh

demo: setup  ## compile a bundled model, run it on the host and in QEMU, print the comparison
	$(PY) bench/demo.py

test: setup  ## the whole test suite (CI runs this)
	$(PY) -m pytest -q -ra

bench: setup  ## memory and speed benchmarks (figures in the README)
	$(PY) bench/arena.py

lint:
	ruff check tvm_patch passes tune targets tests bench
