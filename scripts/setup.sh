#!/usr/bin/env bash
# Install everything tvm-patch needs on a fresh Debian machine: the ARM toolchain and QEMU
# (apt-get, only when missing) and the Python package with its test extras (pip).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}

need=()
command -v arm-none-eabi-gcc >/dev/null || need+=(gcc-arm-none-eabi)
[ -e /usr/lib/arm-none-eabi/newlib/libc.a ] || [ -e /usr/lib/arm-none-eabi/lib/libc.a ] || need+=(libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null || need+=(qemu-system-arm)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "setup: missing ${need[*]}. Install them with:" >&2
    echo "  sudo apt-get install -y ${need[*]}" >&2
    echo "setup: (host builds and tests still work; QEMU tests will be skipped)" >&2
  fi
fi

stamp=.setup-stamp
if [ ! -e "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || ! "$PY" -c "import tvm_patch, onnxruntime" 2>/dev/null; then
  echo "setup: pip install -e .[test]"
  "$PY" -m pip install -q --disable-pip-version-check -e ".[test]"
  touch "$stamp"
fi
echo "setup: ok ($(arm-none-eabi-gcc --version 2>/dev/null | head -1 || echo 'no arm-none-eabi-gcc'); $(qemu-system-arm --version 2>/dev/null | head -1 || echo 'no qemu'))"
