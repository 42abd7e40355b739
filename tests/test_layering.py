"""The import direction of the design, read from the source.

Every module's imports, those inside functions included (``if TYPE_CHECKING:`` blocks
excluded: they never run), form a graph. The graph must have no cycle, and every edge
must point down the declared layer order (:data:`LAYERS`): a module imports only modules
of a lower layer or of its own room. A failure names the edge. The edges that tied the
flat package in knots (they are listed in :data:`TODAYS_EDGES`) must each be refused.

Then, at run time: the data path never pulls in torch or Qt, and the CLI starts without
them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Iterable, Optional

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dvsstream"

#: the rooms from the bottom up, by module prefix (the longest prefix names a module's
#: room). A module may import its own room and the layers below it; rooms that share a
#: layer never import each other.
LAYERS: list[tuple[str, ...]] = [
    ("dvsstream.errors",),
    ("dvsstream.events", "dvsstream.fileio", "dvsstream.heap", "dvsstream.lazy"),  # leaves
    ("dvsstream.binning",),                    # Numba kernels, frames, geometry
    ("dvsstream.filters",),                    # noise filters with state across packets
    ("dvsstream.io",),                         # one module per format, the HDF5 writer/reader
    ("dvsstream.io.record",),                  # record and convert: above every source
    ("dvsstream.synth",),                      # emulator, gestures, the synthetic set
    ("dvsstream.models",),                     # the Spikformer family
    ("dvsstream.datasets",),                   # layouts, FrameSpec, frames in memory
    ("dvsstream.training", "dvsstream.stream"),  # Trainer / evaluation; the live pipeline
    ("dvsstream.render",),                     # clips, without Qt
    ("dvsstream.gui",),                        # the window's Qt-free state and controller
    ("dvsstream.gui.qt",),                     # the widgets and the window
    ("dvsstream.gui.app",),                    # builds the window and runs Qt's loop
    ("dvsstream.cli",),                        # one module per verb
    ("dvsstream.__main__",),
]

#: the edges that made the flat package's cycles and upward imports (issue 20), in
#: today's module names; adding any one set to the graph must fail the check
TODAYS_EDGES = {
    "models.layers <-> models.bn_lif": [("dvsstream.models.layers", "dvsstream.models.bn_lif"),
                                        ("dvsstream.models.bn_lif", "dvsstream.models.layers")],
    "cli <-> gui.app": [("dvsstream.cli", "dvsstream.cli.gui"), ("dvsstream.gui.app", "dvsstream.cli")],
    "the eight-module loop": [("dvsstream.io.hdf5", "dvsstream.io.record"), ("dvsstream.io.record", "dvsstream.io"),
                              ("dvsstream.io.record", "dvsstream.cli.validate"),
                              ("dvsstream.cli.validate", "dvsstream.render.clip"),
                              ("dvsstream.render.clip", "dvsstream.gui.state"),
                              ("dvsstream.gui.state", "dvsstream.cli.run"),
                              ("dvsstream.cli.run", "dvsstream.stream.pipeline"),
                              ("dvsstream.stream.pipeline", "dvsstream.io.record")],
    "the live run imports the CLI's checks": [("dvsstream.stream.live", "dvsstream.cli.validate")],
    "recording imports the CLI's checks": [("dvsstream.io.record", "dvsstream.cli.validate")],
    "the window's state imports the headless run": [("dvsstream.gui.state", "dvsstream.cli.run")],
    "a source imports record/convert": [("dvsstream.io.hdf5", "dvsstream.io.record")],
    "clips import the window's state": [("dvsstream.render.clip", "dvsstream.gui.state")],
    "the library imports the CLI": [("dvsstream.training.train", "dvsstream.cli.args")],
}


# ---------------------------------------------------------------------- the graph
def package_modules(root: Path = PACKAGE) -> dict[str, Path]:
    """``dotted name -> file`` for every module of the package (packages by their
    ``__init__``)."""
    mods = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


def _resolve(name: str, mods: dict[str, Path]) -> Optional[str]:
    """The package module ``name`` (or an attribute of it) lives in, or None."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _imported_names(module: str, node: ast.AST, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        parts = module.split(".")
        parts = parts[: len(parts) - node.level + (1 if is_package else 0)]
        base = ".".join(parts + ([node.module] if node.module else []))
    return [base] + [f"{base}.{a.name}" for a in node.names]


def import_graph(mods: Optional[dict[str, Path]] = None) -> dict[str, set[str]]:
    """``module -> the package modules it imports``, at any depth of its code. A
    package's ``__init__`` importing its own submodules (re-exports) is left out."""
    mods = package_modules() if mods is None else mods
    graph = {}
    for module, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(block.test) for n in ast.walk(block)}
        is_package = path.name == "__init__.py"
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skipped:
                for name in _imported_names(module, node, is_package):
                    target = _resolve(name, mods)
                    if target and target != module and not (is_package and target.startswith(module + ".")):
                        edges.add(target)
        graph[module] = edges
    return graph


# ---------------------------------------------------------------------- the rules
def room_of(module: str) -> tuple[int, str]:
    """``(layer index, room prefix)`` of ``module``: its longest prefix in :data:`LAYERS`."""
    best = None
    for index, rooms in enumerate(LAYERS):
        for prefix in rooms:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[1])):
                best = (index, prefix)
    if best is None:
        if module == "dvsstream":
            return (-1, "dvsstream")  # the facade: __version__ and the lazily re-exported names
        raise AssertionError(f"{module} is in no layer of tests/test_layering.py's LAYERS: declare its room")
    return best


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Edges that point up the layer order or across rooms of one layer."""
    bad = []
    for source, targets in sorted(graph.items()):
        src_layer, src_room = room_of(source)
        for target in sorted(targets):
            dst_layer, dst_room = room_of(target)
            if dst_room == src_room or dst_layer < src_layer or target == "dvsstream":
                continue
            why = "across one layer" if dst_layer == src_layer else "upward"
            bad.append(f"{source} imports {target} ({why}: {src_room} is layer {src_layer}, "
                       f"{dst_room} layer {dst_layer})")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def problems(graph: dict[str, set[str]]) -> list[str]:
    """Every cycle and every edge against :data:`LAYERS`, one line each."""
    out = [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    return out + layer_violations(graph)


def with_edges(graph: dict[str, set[str]], edges: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    new = {k: set(v) for k, v in graph.items()}
    for a, b in edges:
        new.setdefault(a, set()).add(b)
        new.setdefault(b, set())
    return new


# ---------------------------------------------------------------------- the tests
def test_imports_run_one_way():
    found = problems(import_graph())
    assert not found, "\n".join(found)


def test_every_module_has_a_room():
    for module in package_modules():
        room_of(module)


@pytest.mark.parametrize("finding", sorted(TODAYS_EDGES))
def test_todays_edges_are_refused(finding):
    graph = import_graph()
    assert not problems(graph)
    added = problems(with_edges(graph, TODAYS_EDGES[finding]))
    assert added, f"the check accepts {finding}: {TODAYS_EDGES[finding]}"


def test_the_check_reads_imports_inside_functions(tmp_path):
    pkg = tmp_path / "dvsstream"
    (pkg / "binning").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "binning" / "__init__.py").write_text("def f():\n    from dvsstream.models import x\n")
    (pkg / "models.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from dvsstream import binning\n")
    graph = import_graph(package_modules(pkg))
    assert graph["dvsstream.binning"] == {"dvsstream.models"}
    assert graph["dvsstream.models"] == set()
    assert layer_violations(graph) == ["dvsstream.binning imports dvsstream.models (upward: dvsstream.binning is "
                                       "layer 2, dvsstream.models layer 7)"]


# ---------------------------------------------------------------------- at run time
DATA_PATH = [
    "dvsstream",
    "dvsstream.events",
    "dvsstream.fileio",
    "dvsstream.heap",
    "dvsstream.binning",
    "dvsstream.filters",
    "dvsstream.io",
    "dvsstream.io.aedat2",
    "dvsstream.io.aedat3",
    "dvsstream.io.aedat4",
    "dvsstream.io.npy",
    "dvsstream.io.hdf5",
    "dvsstream.io.camera",
    "dvsstream.io.network",
    "dvsstream.io.synthetic",
    "dvsstream.io.record",
    "dvsstream.datasets.release",
    "dvsstream.synth.emulator",
    "dvsstream.synth.gestures",
    "dvsstream.synth.dataset",
    "dvsstream.synth.scenes",
    "dvsstream.synth.sprites",
    "dvsstream.training.plots",
    "dvsstream.cli",
    "dvsstream.render.clip",  # clips: torch and PyAV load only when a clip is written
]


def imported(module: str, heavy: tuple[str, ...]) -> str:
    """Which of ``heavy`` a fresh interpreter has loaded after importing ``module``."""
    code = f"import sys, {module}; print(','.join(sorted(m for m in {heavy!r} if m in sys.modules)))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("module", DATA_PATH)
def test_data_path_imports_no_torch_no_qt(module):
    bad = imported(module, ("torch", "PySide6", "pyqtgraph", "tonic"))
    assert bad == "", f"{module} imports {bad}"


@pytest.mark.parametrize("module", ["dvsstream.stream", "dvsstream.models", "dvsstream.gui.app", "dvsstream.gui.state",
                                    "dvsstream.gui.controller"])
def test_engine_imports_no_qt(module):
    """Qt and pyqtgraph live only in ``dvsstream.gui.qt``."""
    bad = imported(module, ("PySide6", "pyqtgraph"))
    assert bad == "", f"{module} imports {bad}"


def test_qt_only_in_gui_qt():
    """No module outside ``dvsstream/gui/qt`` imports Qt or pyqtgraph at module level."""
    for module, path in package_modules().items():
        if module.startswith("dvsstream.gui.qt"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("PySide6", "pyqtgraph") for n in names), module
