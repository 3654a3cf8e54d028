"""`tvmc`: the classic TVM command line, rebuilt on this backend (compile, run, tune)."""

from __future__ import annotations

import argparse
import math
import shutil
import signal
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np

from tvm_patch_core.errors import BadRunInputs, TvmPatchError
from tvm_patch_core.names import shown
from tvm_patch_core.options import (
    CompileOptions,
    PatchOptions,
    Schedule,
    parse_bytes,
    parse_grid,
    parse_input_shapes,
    parse_percent,
    parse_split,
)
from tvm_patch_core.report import pareto_table

from .compile import compile_model
from .run import load_report, run_compiled
from .tune.tuner import TuneSettings, tune_model

TARGETS = "host, cortex-m4, cortex-m7, cortex-m33, a board name (mps2-an386, ...)"


def _options(args: argparse.Namespace, **extra: object) -> CompileOptions:
    """The options `tvmc compile` and `tvmc tune` share, plus `extra`."""
    patch = PatchOptions(
        grid=parse_grid(args.patches),
        split=parse_split(getattr(args, "split", None)),
        stream_input=getattr(args, "stream_input", False),
        max_extra_macs=parse_percent(getattr(args, "max_extra_macs", None)),
    )
    return CompileOptions(
        target=args.target,
        schedule=Schedule.PATCH if args.pass_name == "patch" else Schedule.LAYER,
        patch=patch,
        sram_cap=parse_bytes(args.sram_cap) if args.sram_cap else None,
        input_shapes=parse_input_shapes(args.input_shapes),
        desired_layout=args.desired_layout,
        **extra,
    )


def _compile(args: argparse.Namespace) -> int:
    options = _options(
        args,
        kernels=args.kernels,
        kernel_calls=args.kernel_calls,
        plot=bool(args.plot),
        tuning_records=args.tuning_records,
        allow_nonfinite_weights=args.allow_nonfinite_weights,
        dsp_kernels=not args.no_dsp_kernels,
    )
    if args.plot and not Path(args.plot).absolute().parent.is_dir():
        raise TvmPatchError(f"--plot {args.plot}: the folder {Path(args.plot).parent} does not exist")
    result = compile_model(args.model, args.output, options)
    if args.verbose:
        for line in result.log:
            print(f"tvm: {line}", file=sys.stderr)
    r = result.report
    if args.output_format == "mlf":
        _write_mlf(result.out_dir)  # after the compile: OUT is ours by now
    if args.plot:
        shutil.copyfile(result.out_dir / "profile.png", args.plot)
    print(
        f"compiled {Path(r.model).name} for {r.board} ({r.kernels} kernels, {r.schedule} schedule): "
        f"peak SRAM {r.peak_sram_bytes:,} B (lower bound {r.lower_bound_bytes:,} B), "
        f"flash {r.flash_bytes:,} B, {r.macs:,} MACs -> {result.out_dir}"
    )
    for st in r.patch_stages:
        print(
            f"  patch stage: {len(st.layers)} layers, {st.grid[0]}x{st.grid[1]} patches in one kernel "
            f"(scratch pool {st.scratch_pool_bytes:,} B, {len(st.in_place)} layers in place), "
            f"+{st.extra_macs:,} MACs ({100 * st.extra_fraction_of_model:.1f}% of the model); per-layer build: "
            f"{r.layer_peak_sram_bytes:,} B ({r.layer_peak_sram_bytes_excl_input:,} B without the input), "
            + (
                f"patched {r.peak_sram_bytes:,} B with the input streamed (none of it in the arena)"
                if r.input_streamed
                else f"patched {r.peak_sram_bytes:,} B ({r.peak_sram_bytes_excl_input:,} B without the input)"
            )
        )
    if args.pareto:
        print(pareto_table(r))
    if r.patch_refused is not None:
        print(f"  patch pass refused: {r.patch_refused}")
    if r.tuning is not None:
        print(f"  tuned schedules from {args.tuning_records}: {len(r.tuning['kernels'])} kernels")
    return 0


def _tune(args: argparse.Namespace) -> int:
    options = _options(args)
    if args.trials < 1:
        raise TvmPatchError(f"--trials {args.trials}: use a positive number")
    settings = TuneSettings(
        trials=args.trials,
        runner=args.runner,
        rpc_tracker=args.rpc_tracker,
        rpc_key=args.rpc_key,
        trials_per_iter=min(args.trials, args.trials_per_iter),
        seed=args.seed,
        verbose=args.verbose,
    )
    s = tune_model(args.model, options, settings, args.output)
    qemu = args.runner == "qemu" and not args.rpc_tracker

    def unit(t: float) -> str:
        return f"{t * 1e9:,.0f} instr" if qemu else f"{t * 1e6:,.1f} us"

    cap = f"--sram-cap {s.sram_cap:,} B" if s.sram_cap is not None else "no cap"
    print(
        f"tuned {Path(args.model).name}: {s.trials} trials over {len(s.tasks)} kernels in {s.seconds:.0f} s, "
        f"{s.rejected} candidates over the cap rejected ({cap}); arena {s.untuned_arena:,} B untuned, "
        f"{s.tuned_arena:,} B tuned -> {s.records}"
        + (f" (resumed from {s.resumed_records} records)" if s.resumed_records else "")
    )
    if s.grid is not None:
        g = s.grid
        shown_costs = [
            f"{a}x{b}: {v:,.0f}" if g.unit == "instructions" else f"{a}x{b}: {v * 1e3:.2f} ms"
            for (a, b), v in g.costs.items()
        ]
        refused = "".join(f"; {k} refused ({v})" for k, v in g.refused.items())
        print(f"  patch grid {g.grid[0]}x{g.grid[1]}, the fastest measured ({', '.join(shown_costs)}{refused})")
    for a in s.applied:
        base = f", untuned {unit(a.untuned_secs)}" if a.untuned_secs is not None else ""
        kept = "" if a.used else " (slower: InlineKernels kept)"
        print(f"  {a.kernel}: best {unit(a.run_secs)}{base}{kept}")
    reasons: dict[str, list[str]] = {}
    for name, why in s.skipped.items():
        reasons.setdefault(why, []).append(name)
    for why, names in reasons.items():
        more = ", ..." if len(names) > 4 else ""
        print(f"  not tuned, {why}: {len(names)} kernels ({', '.join(sorted(names)[:4])}{more})")
    return 0


def _write_mlf(out_dir: Path) -> Path:
    """A Model Library Format-style archive: codegen sources, runtime, metadata; the same
    bytes for the same files (sorted, no times or owners), so builds stay reproducible."""

    def plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        return info

    files = [(f, f"codegen/host/src/{f.name}") for f in sorted((out_dir / "src").iterdir())]
    files.append((out_dir / "report.json", "metadata.json"))
    files += [(f, f"project/{f.relative_to(out_dir / 'project')}") for f in sorted((out_dir / "project").rglob("*"))]
    tar_path = out_dir / "model.tar"
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for f, name in files:
            tar.add(f, arcname=name, recursive=False, filter=plain)
    return tar_path


def _read_inputs(path: str, names: list[str]) -> list[np.ndarray]:
    """The arrays of an .npz for the model's inputs, by name (or in order when no name fits)."""
    where = f"--inputs {path}"
    if not Path(path).is_file():
        raise BadRunInputs(f"{where}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise BadRunInputs(f"{where}: not a .npz file; save the inputs with numpy.savez(path, NAME=array)") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise BadRunInputs(f"{where}: a single .npy array; save the inputs with numpy.savez(path, NAME=array)")
    with data:
        try:
            arrays = {k: data[k] for k in data.files}
        except (ValueError, OSError, EOFError) as err:
            raise BadRunInputs(f"{where}: cannot read its arrays ({shown(str(err), quote=False, limit=120)})") from None
    missing = [n for n in names if n not in arrays]
    if not missing:
        return [arrays[n] for n in names]
    if len(arrays) == len(names):
        return list(arrays.values())
    raise BadRunInputs(f"{where}: no array named {shown(missing[0])} (it has {sorted(arrays)})")


def _run(args: argparse.Namespace) -> int:
    if not (math.isfinite(args.timeout) and args.timeout > 0):
        raise TvmPatchError(f"--timeout {args.timeout:g}: give a positive number of seconds")
    for flag, dest in (("--outputs", args.outputs), ("--report", args.report)):
        if dest and not Path(dest).absolute().parent.is_dir():
            raise TvmPatchError(f"{flag} {dest}: the folder {Path(dest).parent} does not exist")
    inputs = None
    report = load_report(Path(args.out))
    if args.inputs:
        inputs = _read_inputs(args.inputs, [s.name for s in report.inputs])
    elif args.fill_mode != "random":
        fill = 0 if args.fill_mode == "zeros" else 1
        inputs = [np.full(s.shape, fill, dtype=s.dtype) for s in report.inputs]
    run = run_compiled(args.out, device=args.device, board=args.board, inputs=inputs, timeout_s=args.timeout)
    if args.outputs:
        np.savez(args.outputs, **{o.name: a for o, a in zip(report.outputs, run.outputs, strict=True)})
    if args.report:
        Path(args.report).write_text(run.report.to_json())
    rr = run.report
    if args.print_time or not args.print_top:
        if rr.instructions is not None:
            what = f"{rr.instructions:,} instructions (QEMU, {rr.board})"
        else:
            what = f"{rr.host_seconds * 1e3:.3f} ms (host)"
        print(f"ran {Path(rr.model).name} on {args.device}: {what}, peak SRAM {rr.peak_sram_bytes:,} B")
    if args.print_top:
        for o, a in zip(report.outputs, run.outputs, strict=True):
            flat = a.reshape(-1).astype(np.float64)
            top = np.argsort(-flat, kind="stable")[: args.print_top]
            print(f"{o.name}: " + ", ".join(f"[{i}] {a.reshape(-1)[i]}" for i in top))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tvmc", description="tvm-patch: compile CNNs for microcontrollers")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compile", help="compile an ONNX/TFLite model to C, an ELF and a project")
    c.add_argument("model", help="model.onnx or model.tflite")
    c.add_argument("--target", default="cortex-m4", help=f"{TARGETS} (default cortex-m4)")
    c.add_argument("-o", "--output", required=True, help="output folder OUT")
    c.add_argument("--input-shapes", help="static input shapes, e.g. 'input:[1,3,224,224]'")
    c.add_argument("--desired-layout", choices=["NCHW", "NHWC"], help="convert conv2d layouts")
    c.add_argument(
        "--output-format",
        choices=["project", "mlf"],
        default="project",
        help="project: OUT/project with a Makefile (always written); mlf: also OUT/model.tar",
    )
    c.add_argument(
        "--kernels",
        choices=["auto", "c", "llvm"],
        default="auto",
        help="TVM codegen for the kernels (auto: llvm on Cortex-M, c on the host)",
    )
    c.add_argument(
        "--kernel-calls",
        choices=["direct", "packed"],
        default="direct",
        help="direct: the call sequence passes typed data pointers, checked at compile time; packed (debug): "
        "DLTensors through TVM's packed API, which checks every argument at run time",
    )
    c.add_argument(
        "--pass",
        dest="pass_name",
        choices=["none", "patch"],
        default="none",
        help="patch: run the memory-heavy early layers patch by patch (MCUNetV2)",
    )
    c.add_argument("--sram-cap", help="SRAM budget for the whole arena, e.g. 64KiB (bytes, KiB, MiB)")
    c.add_argument("--patches", default="auto", help="patch grid: auto, N or NxM")
    c.add_argument("--split", default="auto", help="layers in the patch stage: auto or K")
    c.add_argument(
        "--stream-input",
        "--exclude-input",
        dest="stream_input",
        action="store_true",
        help="the patch stage reads the model input window by window through a provider callback "
        "(tvmgen_<name>_run_streamed; tvmc run reads input.bin), so the arena holds no input: "
        "patches and --sram-cap are planned for that arena (MCUNetV2's count)",
    )
    c.add_argument(
        "--plot", metavar="PNG", help="draw bytes live per layer (per-layer vs patch, the cap) and the planner's front"
    )
    c.add_argument(
        "--pareto",
        action="store_true",
        help="with --pass patch: print the planner's Pareto front (arena vs extra MACs), the chosen plan marked",
    )
    c.add_argument(
        "--max-extra-macs",
        metavar="PCT",
        help="with --pass patch: the most MACs a plan may add, in %% of the model's (default: the knee within 10)",
    )
    c.add_argument("--tuning-records", metavar="JSON", help="apply `tvmc tune -o` records (same model and target)")
    c.add_argument(
        "--allow-nonfinite-weights",
        action="store_true",
        help="compile weights that hold NaN or Inf (refused by default)",
    )
    c.add_argument(
        "--no-dsp-kernels",
        action="store_true",
        help="keep TVM's loops for int8 convs instead of the SMLAD micro-kernels (tvmp_kernels_s8.c)",
    )
    c.add_argument("-v", "--verbose", action="store_true", help="also show TVM's own messages")
    c.set_defaults(func=_compile)

    t = sub.add_parser("tune", help="tune the model's kernels with MetaSchedule under an SRAM cap")
    t.add_argument("model", help="model.onnx or model.tflite")
    t.add_argument("--target", default="cortex-m4", help=f"{TARGETS} (default cortex-m4)")
    t.add_argument("-o", "--output", required=True, help="records.json to write (continued if it exists)")
    t.add_argument(
        "--pass",
        dest="pass_name",
        choices=["none", "patch"],
        default="none",
        help="tune the kernels of the patch build (the patch stage itself keeps its schedule)",
    )
    t.add_argument("--sram-cap", help="SRAM budget for the whole arena; candidates over it are rejected")
    t.add_argument(
        "--patches",
        default="auto",
        help="with --pass patch: auto (measure the planner's grid and 1x1..4x4, keep the fastest), N or NxM",
    )
    t.add_argument("--trials", type=int, default=64, help="measured candidates over all kernels (default 64)")
    t.add_argument("--trials-per-iter", type=int, default=8, help="candidates per search round (default 8)")
    t.add_argument(
        "--runner",
        choices=["host", "qemu"],
        default="host",
        help="host: LLVM on this machine (a quick proxy); qemu: instruction counts on the board",
    )
    t.add_argument("--rpc-tracker", metavar="HOST:PORT", help="measure on TVM RPC servers registered at this tracker")
    t.add_argument("--rpc-key", help="the RPC servers' key")
    t.add_argument("--input-shapes", help="static input shapes, e.g. 'input:[1,3,224,224]'")
    t.add_argument("--desired-layout", choices=["NCHW", "NHWC"], help="convert conv2d layouts")
    t.add_argument("--seed", type=int, default=0, help="search seed")
    t.add_argument("-v", "--verbose", action="store_true", help="MetaSchedule's own log on the console")
    t.set_defaults(func=_tune)

    r = sub.add_parser("run", help="run a compiled OUT on the host or in QEMU")
    r.add_argument("out", help="folder written by tvmc compile")
    r.add_argument("--device", choices=["host", "qemu"], default="qemu")
    r.add_argument("--board", help="QEMU board (default: the one compiled for)")
    r.add_argument("--inputs", help="inputs .npz (default: random, seeded)")
    r.add_argument("--fill-mode", choices=["random", "zeros", "ones"], default="random")
    r.add_argument("--outputs", help="write outputs to this .npz")
    r.add_argument("--print-top", type=int, metavar="N", help="print the top N output entries")
    r.add_argument("--print-time", action="store_true", help="print instructions (QEMU) or time (host)")
    r.add_argument("--report", help="write the run report (JSON) here")
    r.add_argument("--timeout", type=float, default=600.0, help="seconds before a run counts as hung")
    r.set_defaults(func=_run)
    return p


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so every `finally` (staging folders) runs."""


_SIGNALS = {signal.SIGINT: ("interrupted", 130), signal.SIGTERM: ("terminated", 143)}


def _on_signal(received: list[int]):
    def handler(signum: int, _frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)

    return handler


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A signal that lands inside a TVM callback reaches us as TVM's RuntimeError: the handler
    # records it, so the exit says what happened whatever the exception became.
    received: list[int] = []
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, _on_signal(received)) for s in _SIGNALS} if main_thread else {}
    try:
        return args.func(args)
    except TvmPatchError as err:
        if received:
            return _signalled(received[0])
        message = " ".join(str(err).split("\n"))  # one line, always
        print(f"error: {type(err).__name__}: {message}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Terminated):
        return _signalled(received[0] if received else signal.SIGINT)
    except Exception:
        if received:
            return _signalled(received[0])
        raise
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def _signalled(signum: int) -> int:
    what, code = _SIGNALS.get(signum, ("interrupted", 130))
    print(f"error: {what}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
