"""Export a standalone project: the model, the runtime, TVM's headers and a Makefile.

Layout of the exported folder::

    Makefile     make: model.elf with the flags build_elf uses; make run: run it
                 (QEMU, or natively for the host) on ./input.bin -> ./output.bin
    model/       the model's C sources, the headers beside them, TVM objects
    runtime/     harness, runtime, platform files, linker scripts for the board
    include/     the TVM headers the C actually includes, transitively

Nothing in it refers back to this Python package or the TVM wheel.
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path

from tvm_patch_core.boards import Board
from tvm_patch_core.errors import BuildError

from .runner import qemu_command
from .toolchain import (
    DEFAULT_STACK_BYTES,
    compile_flags,
    compiler,
    link_flags,
    linker_scripts,
    runtime_dir,
    runtime_headers,
    runtime_sources,
    tvm_include_dirs,
)

_INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.MULTILINE)


def _tvm_headers(c_files: Sequence[Path], search: Sequence[Path]) -> dict[str, Path]:
    """Relative name -> file of every header under ``search`` that ``c_files`` include,
    following includes inside those headers. Conditional includes count too, so the
    set may be slightly larger than one configuration needs, never smaller."""
    found: dict[str, Path] = {}
    pending = list(c_files)
    while pending:
        text = pending.pop().read_text(errors="replace")
        for name in _INCLUDE.findall(text):
            if name in found:
                continue
            for folder in search:
                if (folder / name).is_file():
                    found[name] = folder / name
                    pending.append(folder / name)
                    break
    return found


def _copy_unique(files: Sequence[Path], folder: Path) -> list[str]:
    names: list[str] = []
    for path in files:
        if path.name in names:
            raise BuildError(f"two files named {path.name} would collide in {folder}")
        shutil.copy2(path, folder / path.name)
        names.append(path.name)
    return names


def _makefile(board: Board, sources: list[str], objects: list[str], opt: str, stack_bytes: int) -> str:
    cflags = " ".join(compile_flags(board, opt))
    ldflags = " ".join(["-Lruntime", *link_flags(board, stack_bytes), "-Wl,-Map=model.elf.map"])
    run = "./model.elf" if board.is_host else shlex.join(qemu_command(board, Path("model.elf")))
    return f"""# Standalone build of a tvm-patch model for {board.name} ({board.cpu}).
# make        builds model.elf
# make run    runs it on ./input.bin (all inputs back to back) and writes ./output.bin;
#             it prints TVMP_RESULT rc=.. count=.. unit=.. stack=.. and TVMP_DONE
CC = {compiler(board)}
CFLAGS = {cflags}
INCLUDES = -Imodel -Iruntime -Iinclude
SOURCES = {" ".join(sources)}
OBJECTS = {" ".join(objects)}
LDFLAGS = {ldflags}

model.elf: $(SOURCES) $(OBJECTS) $(wildcard model/*.h runtime/*.h runtime/*.ld)
\t$(CC) $(CFLAGS) $(INCLUDES) $(SOURCES) $(OBJECTS) $(LDFLAGS) -o $@

run: model.elf
\t{run}

clean:
\trm -f model.elf model.elf.map output.bin

.PHONY: run clean
"""


def export_project(
    board: Board,
    model_sources: Sequence[Path | str],
    model_objects: Sequence[Path | str],
    dest: Path | str,
    *,
    opt: str = "-O2",
    stack_bytes: int = DEFAULT_STACK_BYTES,
) -> Path:
    """Write the standalone project for ``board`` into ``dest`` and return ``dest``.

    Headers in the folders of ``model_sources`` (``tvmp_model.h`` and friends) are
    copied along with the sources.
    """
    dest = Path(dest)
    sources = [Path(p) for p in model_sources]
    objects = [Path(p) for p in model_objects]
    for path in (*sources, *objects):
        if not path.is_file():
            raise BuildError(f"cannot export {board.name} project: {path} does not exist")
    model_headers = sorted({h for s in sources for h in s.parent.glob("*.h")})
    for sub in ("model", "runtime", "include"):
        (dest / sub).mkdir(parents=True, exist_ok=True)

    _copy_unique([*sources, *model_headers, *objects], dest / "model")
    runtime_files = [*runtime_sources(board), *runtime_headers(), *linker_scripts(board)]
    _copy_unique(runtime_files, dest / "runtime")
    c_files = [*sources, *model_headers, *runtime_sources(board), *runtime_headers()]
    for name, path in _tvm_headers(c_files, [runtime_dir(), *tvm_include_dirs()]).items():
        if path.parent == runtime_dir():
            continue
        (dest / "include" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest / "include" / name)

    all_sources = [f"model/{p.name}" for p in sources] + [f"runtime/{p.name}" for p in runtime_sources(board)]
    (dest / "Makefile").write_text(
        _makefile(board, all_sources, [f"model/{p.name}" for p in objects], opt, stack_bytes)
    )
    return dest
