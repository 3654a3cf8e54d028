"""Compilers and binutils: find them, build a program for a board, read its sizes.

A program is the model's C sources (and TVM LLVM objects) plus the runtime in
``targets/runtime/``: the harness ``tvmp_main.c``, the workspace/error runtime,
and the platform files (host, or Cortex-M start-up + SysTick counter). On the
Cortex-M boards it is linked with the board's linker script against newlib
(``--specs=rdimon.specs`` for semihosting I/O, ``-nostartfiles``: our own
start-up replaces newlib's ``_start``).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shlex
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tvm_patch_core.boards import Board
from tvm_patch_core.errors import BuildError, ToolchainMissing

APT_INSTALL = "apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
DEFAULT_STACK_BYTES = 32 * 1024
_COMMON_RUNTIME = ("tvmp_main.c", "tvmp_runtime.c", "tvmp_text.c", "tvmp_kernels_s8.c", "tvmp_kernels_s8_dw.c")
_HOST_RUNTIME = ("tvmp_platform_host.c",)
_CORTEX_M_RUNTIME = ("tvmp_platform_cortexm.c", "tvmp_startup_cortexm.c")
_CORTEX_M_LINKER_COMMON = "tvmp_cortexm.ld"


def runtime_dir() -> Path:
    """The folder with the C runtime, the harness and the linker scripts."""
    return Path(__file__).resolve().parent / "runtime"


def compiler(board: Board) -> str:
    return "gcc" if board.is_host else "arm-none-eabi-gcc"


@functools.cache
def _newlib_installed() -> bool:
    found = subprocess.run(
        ["arm-none-eabi-gcc", "-print-file-name=rdimon.specs"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return Path(found).is_absolute() and Path(found).exists()


def require_tools(board: Board, *, build: bool = True, run: bool = True) -> None:
    """Raise ToolchainMissing naming the first missing tool and how to install it."""
    if board.is_host:
        if build and shutil.which("gcc") is None:
            raise ToolchainMissing("gcc not found on PATH; install it: apt-get install -y gcc")
        return
    needed = []
    if build:
        needed += ["arm-none-eabi-gcc", "arm-none-eabi-nm"]
    if run:
        needed.append("qemu-system-arm")
    for tool in needed:
        if shutil.which(tool) is None:
            raise ToolchainMissing(f"{tool} not found on PATH (needed for {board.name}); {APT_INSTALL}")
    if build and not _newlib_installed():
        raise ToolchainMissing(
            f"newlib for arm-none-eabi (rdimon.specs) not found (needed for {board.name}); {APT_INSTALL}"
        )


def runtime_sources(board: Board) -> list[Path]:
    """The runtime C files compiled into every program for this board."""
    names = _COMMON_RUNTIME + (_HOST_RUNTIME if board.is_host else _CORTEX_M_RUNTIME)
    return [runtime_dir() / name for name in names]


def runtime_headers() -> list[Path]:
    return sorted(runtime_dir().glob("*.h"))


def linker_scripts(board: Board) -> list[Path]:
    """The board's linker script and the common section layout it INCLUDEs."""
    if board.linker_script is None:
        return []
    return [runtime_dir() / board.linker_script, runtime_dir() / _CORTEX_M_LINKER_COMMON]


def tvm_include_dirs() -> list[Path]:
    """Where TVM's C headers live in the installed wheels (found without importing tvm)."""
    dirs = []
    for package in ("tvm", "tvm_ffi"):
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise ToolchainMissing(f"python package {package} not found; pip install apache-tvm")
        dirs.append(Path(spec.origin).parent / "include")
    return dirs


def include_dirs() -> list[Path]:
    """Include path for model and runtime C: the runtime, then TVM's headers."""
    return _runtime_include_dirs()


def _runtime_include_dirs() -> list[Path]:  # build_elf's argument shadows include_dirs
    return [runtime_dir(), *tvm_include_dirs()]


def compile_flags(board: Board, opt: str = "-O2") -> list[str]:
    """Code generation flags, the same for build_elf and an exported Makefile."""
    flags = [opt, "-g", "-ffunction-sections", "-fdata-sections"]
    if board.is_host:
        return flags
    return [*board.gcc_flags, *flags, f"-DTVMP_CLOCK_HZ={board.clock_hz}"]


def link_flags(board: Board, stack_bytes: int = DEFAULT_STACK_BYTES) -> list[str]:
    """Link flags after the linker-script folder is on the -L path."""
    if board.is_host:
        return ["-Wl,--gc-sections", "-lm"]
    return [
        "--specs=rdimon.specs",
        "-nostartfiles",
        f"-T{board.linker_script}",
        f"-Wl,--defsym=__tvmp_stack_size={stack_bytes}",
        "-Wl,--gc-sections",
        "-lm",
    ]


def build_elf(
    board: Board,
    sources: Sequence[Path | str],
    objects: Sequence[Path | str],
    out_elf: Path | str,
    include_dirs: Sequence[Path | str] = (),
    opt: str = "-O2",
    *,
    stack_bytes: int = DEFAULT_STACK_BYTES,
) -> Path:
    """Compile and link the model with the runtime into ``out_elf`` (and ``out_elf``.map).

    The folders of ``sources`` go on the include path (so ``tvmp_model.h`` next to
    the model's C is found), then ``include_dirs``, the runtime and TVM's headers.
    """
    require_tools(board, build=True, run=False)
    out_elf = Path(out_elf).absolute()
    inputs = [Path(p).absolute() for p in (*sources, *objects)]
    for path in inputs:
        if not path.is_file():
            raise BuildError(f"cannot build {out_elf.name} for {board.name}: {path} does not exist")
    # Reproducible: the compiler runs in the ELF's folder with paths relative to it, and that
    # folder is mapped to "." in the debug info, so the ELF and its map are the same bytes
    # wherever the folder is (tvmc compiles in a staging folder with a random name).
    here = out_elf.parent
    here.mkdir(parents=True, exist_ok=True)

    def rel(p: Path | str) -> str:
        p = Path(p).absolute()
        return str(p.relative_to(here)) if p.is_relative_to(here) else str(p)

    source_dirs = list(dict.fromkeys(Path(p).absolute().parent for p in sources))
    incs = [*source_dirs, *(Path(d) for d in include_dirs), *_runtime_include_dirs()]
    cflags = [*compile_flags(board, opt), f"-ffile-prefix-map={here}=.", *(f"-I{rel(d)}" for d in incs)]
    # One object per source under a fixed name (gcc's own temporaries are random and would
    # end up in the map file), removed after the link.
    build = here / f".build-{out_elf.name}"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir()
    try:
        compiled = []
        for k, src in enumerate((*sources, *runtime_sources(board))):
            obj = build / f"{k:02d}_{Path(src).stem}.o"
            _run_tool(board, out_elf, [compiler(board), *cflags, "-c", rel(src), "-o", rel(obj)], here)
            compiled.append(rel(obj))
        link = [
            compiler(board),
            *compile_flags(board, opt),
            *compiled,
            *(rel(p) for p in objects),
            f"-L{runtime_dir()}",
            *link_flags(board, stack_bytes),
            *(["-Wl,--build-id=none"] if board.is_host else []),
            f"-Wl,-Map={out_elf.name}.map",
            "-o",
            out_elf.name,
        ]
        _run_tool(board, out_elf, link, here)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return out_elf


def _run_tool(board: Board, out_elf: Path, cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd)
    if done.returncode != 0:
        log = write_log(
            f"build-{out_elf.stem}-{board.name}",
            f"cd {shlex.quote(str(cwd))} && {shlex.join(cmd)}",
            done.stdout + done.stderr,
        )
        raise BuildError(
            f"{cmd[0]} failed to build {out_elf.name} for {board.name} (exit {done.returncode}): "
            f"{first_error(done.stdout + done.stderr)}; full log: {log}"
        )


def first_error(text: str) -> str:
    """The first line of a compiler's output that says what failed, shortened to one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    hit = next((line for line in lines if re.search(r"\berror\b|overflowed|undefined reference", line)), None)
    line = hit or (lines[-1] if lines else "no output")
    return line if len(line) <= 240 else line[:237] + "..."


def log_dir() -> Path:
    """Where full build logs go: the system temp folder, never beside OUT."""
    return Path(tempfile.gettempdir()) / "tvm-patch-logs"


def write_log(stem: str, command: str, output: str) -> Path:
    folder = log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{stem}-", suffix=".log", dir=folder)
    with os.fdopen(fd, "w") as f:
        f.write(f"$ {command}\n{output}")
    return Path(name)


# --- reading the built program -------------------------------------------------

_SHF_WRITE, _SHF_ALLOC, _SHF_EXECINSTR = 0x1, 0x2, 0x4
_SHT_NOBITS = 8
_EM_ARM = 40
_RESERVED_SECTIONS = {".stack": "stack_reserved"}


def _elf_header(data: bytes, elf: Path) -> tuple[bool, str]:
    if data[:4] != b"\x7fELF":
        raise BuildError(f"{elf} is not an ELF file")
    return data[4] == 2, "<" if data[5] == 1 else ">"


def _elf_machine(elf: Path) -> int:
    data = Path(elf).read_bytes()[:20]
    _, endian = _elf_header(data, Path(elf))
    return struct.unpack_from(endian + "H", data, 18)[0]


def _elf_sections(elf: Path) -> list[tuple[str, int, int, int]]:
    """(name, type, flags, size) of every section header."""
    data = Path(elf).read_bytes()
    is64, e = _elf_header(data, Path(elf))
    if is64:
        (shoff,) = struct.unpack_from(e + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 0x3A)
        header = e + "IIQQQQ"
    else:
        (shoff,) = struct.unpack_from(e + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 0x2E)
        header = e + "IIIIII"
    rows = [struct.unpack_from(header, data, shoff + i * shentsize) for i in range(shnum)]
    strtab_offset = rows[shstrndx][4]

    def name(offset: int) -> str:
        start = strtab_offset + offset
        return data[start : data.index(b"\0", start)].decode()

    return [(name(r[0]), r[1], r[2], r[5]) for r in rows]


def elf_sizes(elf: Path | str) -> dict[str, int]:
    """Bytes per kind of loaded section: text, rodata, data, bss, and flash = text+rodata+data.

    Sections are classified by their flags (executable: text; NOBITS: bss;
    writable: data; the rest, unwind tables included: rodata). The reserved
    stack is reported apart as ``stack_reserved`` (0 on the host).
    """
    sizes = {"text": 0, "rodata": 0, "data": 0, "bss": 0, "stack_reserved": 0}
    for name, kind, flags, size in _elf_sections(Path(elf)):
        if not flags & _SHF_ALLOC:
            continue
        if name in _RESERVED_SECTIONS:
            sizes[_RESERVED_SECTIONS[name]] += size
        elif flags & _SHF_EXECINSTR:
            sizes["text"] += size
        elif kind == _SHT_NOBITS:
            sizes["bss"] += size
        elif flags & _SHF_WRITE:
            sizes["data"] += size
        else:
            sizes["rodata"] += size
    sizes["flash"] = sizes["text"] + sizes["rodata"] + sizes["data"]
    return sizes


def symbol_size(elf: Path | str, name: str) -> int:
    """Size in bytes of a defined symbol (``nm -S``), e.g. the model arena ``tvmp_arena``."""
    tool = "arm-none-eabi-nm" if _elf_machine(Path(elf)) == _EM_ARM else "nm"
    if shutil.which(tool) is None:
        raise ToolchainMissing(f"{tool} not found on PATH; {APT_INSTALL}")
    listing = subprocess.run([tool, "-S", "--defined-only", str(elf)], capture_output=True, text=True, check=False)
    if listing.returncode != 0:
        raise BuildError(f"{tool} -S {elf} failed: {listing.stderr.strip()}")
    for line in listing.stdout.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[3] == name:
            return int(fields[1], 16)
    raise BuildError(f"symbol {name} with a size not found in {elf} ({tool} -S)")
