"""Writing OUT safely: tvmc never deletes anything it did not write.

1. `check_out_dir` refuses, before any work: `/`, the home folder, the current folder and
   its ancestors, the model's folder and its ancestors, a symbolic link, a file, and an
   existing folder without our marker `.tvmc-out` (a previous `tvmc compile` output).
2. `staged_output` builds into a staging folder beside OUT (`.OUT.tvmc-staging-PID-*`, with
   a marker holding the pid), created with the user's umask. Stale staging folders of earlier
   compiles of the same OUT that were killed (their pid is gone) are removed first: only
   folders carrying our staging marker.
3. On success it replaces OUT atomically, with SIGINT/SIGTERM held off: the old OUT (ours, by
   its marker) is renamed aside, the new one renamed in, then the old one deleted. On any
   failure or signal the staging folder is deleted and OUT is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputDirError

ROOT = Path("/")  # a constant, so a test can stand a temporary folder in for it
MARKER = ".tvmc-out"
STAGING_MARKER = ".tvmc-staging"
_MARKER_TEXT = "written by tvm-patch `tvmc compile`; tvmc replaces this folder on the next compile to it\n"


def check_out_dir(out_dir: Path, model: Path | None = None) -> Path:
    """OUT as an absolute path, or OutputDirError saying why it must not be written."""
    given = Path(out_dir)
    out = given.absolute()
    if out.is_symlink():
        raise OutputDirError(f"-o {given}: is a symbolic link; give the folder itself")
    real = out.resolve()
    cwd = Path.cwd().resolve()
    protected = {ROOT.resolve(): "the root folder", Path.home().resolve(): "your home folder"}
    if real in protected:
        raise OutputDirError(f"-o {given}: refusing to write {protected[real]}; give a new folder, e.g. -o out/")
    if real == cwd or real in cwd.parents:
        raise OutputDirError(
            f"-o {given}: is the current folder or one of its parents; give a new folder, e.g. -o out/"
        )
    if model is not None and real in Path(model).resolve().parents:
        raise OutputDirError(f"-o {given}: holds the model {Path(model).name}; give a new folder, e.g. -o out/")
    if real.exists() and not real.is_dir():
        raise OutputDirError(f"-o {given}: exists and is not a folder; give a new folder")
    if real.is_dir() and not (real / MARKER).is_file():
        raise OutputDirError(
            f"-o {given}: exists and was not written by tvmc compile (no {MARKER} in it); "
            "tvmc replaces only its own output: give a new folder or empty it yourself"
        )
    return out


def _user_umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(out: Path) -> list[Path]:
    """Remove staging (and set-aside) folders of `out` left by compiles that were killed: those
    whose pid (in the marker, or in the name for one killed before its marker was written,
    then empty) is no longer running."""
    removed = []
    for folder in out.parent.glob(f".{out.name}.tvmc-*-*-*"):
        if folder.is_symlink() or not folder.is_dir():
            continue
        marker = folder / STAGING_MARKER
        named = re.fullmatch(rf"\.{re.escape(out.name)}\.tvmc-(?:staging|old)-([0-9]+)-.*", folder.name)
        try:
            if marker.is_file():
                pid = int(marker.read_text().split()[0])
            elif named and not any(folder.iterdir()):
                pid = int(named.group(1))
            else:
                continue
        except (ValueError, IndexError, OSError):
            continue
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


_HELD = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def staged_output(out: Path) -> Iterator[Path]:
    """Yield a staging folder; on success it becomes `out` (see the module docstring)."""
    out = Path(out)
    staging: Path | None = None
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)  # no signal between mkdtemp and the marker
    try:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            clean_stale(out)
            staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tvmc-staging-{os.getpid()}-", dir=out.parent))
            os.chmod(staging, 0o777 & ~_user_umask())
            (staging / STAGING_MARKER).write_text(f"{os.getpid()}\n")
        except OSError as err:
            raise OutputDirError(f"-o {out}: cannot create it in {out.parent} ({err.strerror})") from None
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)  # a pending signal is raised here
        yield staging
        (staging / MARKER).write_text(_MARKER_TEXT)
        with _signals_held():
            _swap(out, staging)
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap(out: Path, staging: Path) -> None:
    """Old OUT aside, new OUT in, old one deleted; back as it was if the move fails."""
    aside = None
    try:
        if out.exists():
            aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.tvmc-old-{os.getpid()}-", dir=out.parent))
            (aside / STAGING_MARKER).write_text(f"{os.getpid()}\n")
            os.rename(out, aside / "out")
        try:
            (staging / STAGING_MARKER).unlink()
            os.rename(staging, out)
        except BaseException:
            if aside is not None:
                os.rename(aside / "out", out)
            raise
    except OSError as err:
        raise OutputDirError(f"-o {out}: cannot replace it ({err.strerror})") from None
    finally:
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
