"""The package's shape: one folder per layer, imports that point one way, a module per chapter.

The layers, in order: the flat core modules, ``lab``, ``caches``, ``models``, ``probes``, ``decide`` (the
reader's front door), ``rehearse`` (the front door's check on real servers), ``chapters``,
``bookkit``. A module may import its own layer and the layers its row
allows below; ``models`` is the exception that matters most: it sees only the core, so every model is
testable without a server.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import experiments
from experiments.lab.processes import WORKER_MODULES
from experiments.paths import ROOT

PACKAGE = ROOT / "experiments"
CORE = {"paths", "errors", "params", "seed", "rules", "claims", "ledger", "measure", "charts", "findings", "results"}
ALLOWED = {
    "core": {"core"},
    "lab": {"core", "lab"},
    "caches": {"core", "lab", "caches"},
    "models": {"core", "models"},
    "probes": {"core", "lab", "caches", "models", "probes"},
    "decide": {"core", "lab", "caches", "models", "probes", "decide"},
    "rehearse": {"core", "lab", "caches", "models", "probes", "decide", "rehearse"},
    "chapters": {"core", "lab", "caches", "models", "probes", "decide", "rehearse", "chapters"},
    "bookkit": {"core", "lab", "caches", "models", "probes", "decide", "rehearse", "chapters", "bookkit"},
}
"""Which layers a module of each layer may import."""

MAX_LINES = 450


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def layer_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return "core" if len(parts) == 1 else parts[0]


def imported_layers(path: Path) -> set[str]:
    """The layers a module imports from (``experiments.X`` for a core module X, or a sub-package)."""
    layers = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "experiments":
            names = [node.module] if node.module != "experiments" else [f"experiments.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("experiments.")]
        for name in names:
            first = name.split(".")[1]
            layers.add("core" if first in CORE else first)
    return layers


def test_every_module_imports_only_the_layers_its_own_allows():
    wrong = {str(p.relative_to(ROOT)): sorted(imported_layers(p) - ALLOWED[layer_of(p)]) for p in modules()}
    assert not {k: v for k, v in wrong.items() if v}


def test_the_models_load_without_any_server_code():
    names = [f"experiments.models.{p.stem}" for p in (PACKAGE / "models").glob("*.py") if p.stem != "__init__"]
    code = ("import sys\n" + "".join(f"import {n}\n" for n in names)
            + "print(sorted(m for m in sys.modules if m.startswith(('experiments.lab', 'experiments.probes'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def imported_modules(path: Path) -> set[str]:
    """Every ``experiments.*`` module a file imports (``from experiments.chapters import redis`` counts as
    ``experiments.chapters.redis``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("experiments"):
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("experiments")}
    return found


def chapter_imports(path: Path) -> set[str]:
    """The chapter modules (other than ``path`` itself) a chapter module imports."""
    chapters = {f"experiments.chapters.{p.stem}" for p in (PACKAGE / "chapters").glob("*.py") if p.stem != "__init__"}
    return (imported_modules(path) & chapters) - {f"experiments.chapters.{path.stem}"}


def test_no_chapter_imports_another_but_the_summary():
    """A figure two chapters share lives in ``seed``, ``data/`` or a model, so editing one chapter never moves
    another's numbers; the summary alone reads every chapter."""
    wrong = {p.name: sorted(chapter_imports(p)) for p in (PACKAGE / "chapters").glob("*.py")
             if p.stem not in ("summary", "__init__")}
    assert not {k: v for k, v in wrong.items() if v}


def test_no_chapter_notebook_imports_another_chapter_s_module():
    for notebook in (ROOT / "book").glob("*.ipynb"):
        if notebook.stem == "summary":
            continue
        own = notebook.stem.replace("-", "_")
        code = "\n".join("".join(c["source"]) for c in json.loads(notebook.read_text())["cells"]
                         if c["cell_type"] == "code")
        tree = ast.parse("\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "experiments.chapters":
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("experiments.chapters."):
                names.add(node.module.rsplit(".", 1)[1])
        assert names <= {own}, f"{notebook.name} imports another chapter: {sorted(names - {own})}"


def test_the_chapter_import_check_sees_one(tmp_path):
    bad = tmp_path / "network.py"
    bad.write_text("from experiments.chapters.redis import x\nfrom experiments.chapters import network, valkey\n")
    assert chapter_imports(bad) == {"experiments.chapters.redis", "experiments.chapters.valkey"}


def test_the_layout_check_sees_a_wrong_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from experiments.lab.servers import RedisServer\nfrom experiments import charts\n")
    assert imported_layers(bad) == {"lab", "core"} and not imported_layers(bad) <= ALLOWED["models"]


def test_no_module_is_longer_than_the_limit():
    long = {str(p.relative_to(ROOT)): n for p in modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long


def test_every_chapter_has_its_module_and_the_package_index_names_it():
    for notebook in (ROOT / "book").glob("*.ipynb"):
        module = notebook.stem.replace("-", "_")
        assert (PACKAGE / "chapters" / f"{module}.py").exists(), notebook.name
        assert f"chapters.{module}" in experiments.__doc__, f"the package docstring does not map {notebook.name}"


def _worker_module_strings() -> set[str]:
    """Module names the package starts as helper processes: `WorkerPool(label, module, ...)` and
    ``spawn_worker([python, "-m", module, ...])`` calls."""
    found = set()
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name == "WorkerPool" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                found.add(node.args[1].value)
            if name == "spawn_worker" and node.args and isinstance(node.args[0], ast.List):
                items = [e.value if isinstance(e, ast.Constant) else None for e in node.args[0].elts]
                if "-m" in items:
                    found.add(items[items.index("-m") + 1])
    return found


def test_the_leak_check_knows_every_worker_module():
    """Renaming a worker module must fail here, not silently blind the leak check."""
    started = _worker_module_strings()
    assert started and started == set(WORKER_MODULES)
    for name in WORKER_MODULES:
        assert importlib.util.find_spec(name) is not None, f"{name} is in WORKER_MODULES but does not exist"


SEED_FIGURES_TYPED_AGAIN = {
    "models/flashsale.py": [r"planned_concurrency: int = \d", r"service_ms: float = \d", r"timeout_ms: float = \d",
                            r"ramp_s: float = \d", r"scale_delay_s[:=]\s*(float = )?\d", r"hit_rate=0\.95"],
    "models/deployment.py": [r"categories: int = \d", r"tasks: int = \d", r"ttl_s: float = \d", r"latency_s: float = \d",
                             r"batch: int = \d", r"interval_s: float = \d"],
    "probes/splitbrain.py": [r"ex=\d"],
    "probes/failover.py": [r"ex=\d", r"ttl_s: int = \d"],
    "probes/invalidation.py": [r"ttl_s: int = \d", r"seq % \d"],
    "probes/scaleout.py": [r"ex=\d", r"\* \d{4}"],
    "probes/staleset.py": [r"TTL_S = \d"],
    "chapters/read_through.py": [r"RELOAD_MS = \d"],
    "models/daxmodel.py": [r"ttl_s: float = \d"],
    "models/daxsim.py": [r"TTL_S = \d"],
    "decide/engine.py": [r"TTL_S = \d"],
}
"""Seed figures and documented defaults once typed as literals beside their home (`experiments.seed`, the key
design, `data/service_defaults.csv`); each must be read from there."""


def test_models_and_probes_read_the_note_s_figures_instead_of_typing_them():
    import re

    typed = {f"{path}: {pattern}" for path, patterns in SEED_FIGURES_TYPED_AGAIN.items()
             for pattern in patterns if re.search(pattern, (PACKAGE / path).read_text())}
    assert not typed
