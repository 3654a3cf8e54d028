"""An int8 model is integer code: no VFP instruction in its Cortex-M4 firmware, and no
soft-float routine linked on Cortex-M3 (which has no FPU, so every float op would be one).

The firmware is checked, not kernels.o: TVM's LLVM objects carry unused fp16 conversion
helpers (__truncsfhf2, __extendhfsf2) that the link's --gc-sections drops."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.host.test_int8_tflm_host import INT8_MODELS, model_path

# Thumb-2 VFP/Advanced SIMD mnemonics all start with v (vadd, vldr, vmov, vcvt, vpush, ...)
VFP = re.compile(r"^\s*[0-9a-f]+:\s+(?:[0-9a-f]{4}\s?)+\s+(v[a-z0-9.]+)", re.MULTILINE)
# libgcc's soft-float entry points (ARM EABI names and the generic ones)
SOFT_FLOAT = re.compile(r"__aeabi_(?:[fd](?:add|sub|mul|div|cmp\w*|neg)|[ui]?[l]?2[fd]|[fd]2\w+)|__\w+[sd]f[23]\b")


@pytest.mark.qemu
@pytest.mark.parametrize("model", INT8_MODELS[:3], ids=[p.stem for p in INT8_MODELS[:3]])
def test_int8_firmware_has_no_vfp_instruction_on_cortex_m4(model, compiled):
    result = compiled(model_path(model), target="cortex-m4")
    assert result.report.kernels == "llvm"
    listing = subprocess.run(
        ["arm-none-eabi-objdump", "-d", str(result.elf)], capture_output=True, text=True, check=True
    )
    assert listing.stdout.count(">:") > 50, "the disassembly lists the firmware's functions"
    found = sorted(set(VFP.findall(listing.stdout)))
    assert found == [], f"{model.name} on cortex-m4 uses VFP: {found[:10]}"


@pytest.mark.qemu
@pytest.mark.parametrize("model", INT8_MODELS[:3], ids=[p.stem for p in INT8_MODELS[:3]])
def test_int8_model_links_no_soft_float_on_cortex_m3(model, compiled):
    result = compiled(model_path(model), target="cortex-m3")
    symbols = subprocess.run(["arm-none-eabi-nm", str(result.elf)], capture_output=True, text=True, check=True)
    found = sorted({m.group(0) for m in SOFT_FLOAT.finditer(symbols.stdout)})
    assert found == [], f"{model.name} on cortex-m3 links soft-float routines: {found}"


def test_the_checks_can_fail():
    """The patterns do match what they must refuse."""
    assert VFP.findall("  1c:\tee30 0a20 \tvadd.f32\ts0, s0, s1\n") == ["vadd.f32"]
    assert SOFT_FLOAT.search("00001234 T __aeabi_fmul") and SOFT_FLOAT.search("00001234 T __addsf3")
    assert not SOFT_FLOAT.search("00001234 T __aeabi_idiv")
