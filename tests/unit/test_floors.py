"""The package is a house with floors: every module imports only from its own floor or below,
and only at the top of the file (a function-level import hides a cycle).

    0 data        tvm_patch_core: errors, names, options, boards, graph, layers, report, fixed_point, ...
    1 planning    tvm_patch_core: arena, liveness, windows, stage_inplace, stage, inplace_rules, plan_score,
                  patch_planner
    2 frontend    tvm_patch: frontend, onnx_import, tflite_import, model_checks, int8, layer_graph, lower; passes/
    3 rewrite     tvm_patch: rewrite, pipelines
    4 targets     targets/
    5 tuning      tune/
    6 flow        tvm_patch: summary, plot, compile, run, cli, __init__

Floors 0 and 1 import no TVM (nor onnx, tflite, matplotlib), and neither does the unit tier.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = {  # pyproject's package-dir
    "tvm_patch_core": REPO / "tvm_patch" / "core",
    "tvm_patch.passes": REPO / "passes",
    "tvm_patch.tune": REPO / "tune",
    "tvm_patch.targets": REPO / "targets",
    "tvm_patch": REPO / "tvm_patch",
}
DATA = {"errors", "names", "options", "boards", "graph", "layers", "report", "progress", "capture", "outdir"}
DATA |= {
    "fixed_point",
    "fixed_point_nonlinear",
}  # TFLite Micro's int8 arithmetic in numpy
PLANNING = {"arena", "liveness", "windows", "stage_inplace", "stage", "inplace_rules", "plan_score", "patch_planner"}
HEAVY = ("tvm", "tvm_ffi", "onnx", "tflite", "matplotlib", "onnxruntime")


def floor(module: str) -> int:
    if module.startswith("tvm_patch_core"):
        leaf = module.split(".")[-1]
        if leaf == "tvm_patch_core" or leaf in DATA:
            return 0
        if leaf in PLANNING:
            return 1
        raise AssertionError(f"{module}: give it a floor in tests/unit/test_floors.py")
    if module.startswith("tvm_patch.passes"):
        return 2
    if module.startswith("tvm_patch.targets"):
        return 4
    if module.startswith("tvm_patch.tune"):
        return 5
    leaf = module.removeprefix("tvm_patch").lstrip(".") or "__init__"
    table = {
        **dict.fromkeys(("frontend", "onnx_import", "tflite_import", "model_checks", "layer_graph", "lower"), 2),
        "int8": 2,
        **dict.fromkeys(("rewrite", "pipelines"), 3),
        **dict.fromkeys(("summary", "plot", "compile", "run", "cli", "__init__"), 6),
    }
    if leaf not in table:
        raise AssertionError(f"{module}: give it a floor in tests/unit/test_floors.py")
    return table[leaf]


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in sorted(folder.glob("*.py")):
            if package == "tvm_patch" and path.parent != folder:
                continue
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            found[name] = path
    return found


def project_imports(module: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported project module, line, at the top of the file) for every import in `path`."""
    tree = ast.parse(path.read_text())
    package = module if path.stem == "__init__" else module.rpartition(".")[0]
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for name in names:
            if name.split(".")[0] in ("tvm_patch", "tvm_patch_core"):
                out.append((name, node.lineno, id(node) in top))
    return out


def resolve(name: str, known: dict[str, Path]) -> str | None:
    """The project module `name` refers to (`from pkg import mod` names `pkg.mod`)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


MODULES = modules()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_downwards_and_at_the_top(module):
    path = MODULES[module]
    for name, line, at_top in project_imports(module, path):
        target = resolve(name, MODULES)
        if target is None or target == module:
            continue
        where = f"{path.relative_to(REPO)}:{line} imports {target}"
        assert at_top, f"{where} inside a function: import at the top, or move the code a floor down"
        assert floor(target) <= floor(module), f"{where}, floor {floor(target)} above its own {floor(module)}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if floor(m) <= 1))
def test_pure_floors_import_no_tvm(module):
    tree = ast.parse(MODULES[module].read_text())
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        for name in names:
            assert name.split(".")[0] not in HEAVY, f"{module}:{node.lineno} imports {name}"


def test_no_import_cycles():
    graph = {m: {resolve(n, MODULES) for n, _, _ in project_imports(m, p)} - {None, m} for m, p in MODULES.items()}
    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> None:
        if state.get(m) == 2:
            return
        assert state.get(m) != 1, "import cycle: " + " -> ".join([*trail, m])
        state[m] = 1
        for n in sorted(graph[m]):
            if not (m == "tvm_patch" and n.startswith("tvm_patch.")):  # a package imports its own modules
                visit(n, [*trail, m])
        state[m] = 2

    for m in sorted(graph):
        visit(m, [])


def _loaded_after_importing(names: list[str], roots: tuple[str, ...]) -> str:
    """Import `names` in a fresh interpreter; the modules of `roots` that got loaded."""
    code = (
        "import importlib, sys\n"
        f"for m in {names!r}: importlib.import_module(m)\n"
        f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({roots!r}))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_pure_floors_load_without_tvm():
    assert _loaded_after_importing([m for m in MODULES if floor(m) <= 1], HEAVY) == ""


def test_the_unit_tier_loads_without_tvm():
    tests = [f"tests.unit.{p.stem}" for p in sorted((REPO / "tests" / "unit").glob("test_*.py"))]
    assert _loaded_after_importing(tests, ("tvm", "tvm_ffi")) == ""
