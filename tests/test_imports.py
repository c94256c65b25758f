"""The package's import graph, read from the source (ast): no import cycles, and no import from
the lower layers (I/O, config, models, kernels, data) up into the training, evaluation, CLI, live
or benchmark code. Every import counts, also the ones inside functions: a lazy import that closes
a cycle is still a cycle between two modules' jobs."""
import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
LOW = ("bytelm.errors", "bytelm.version", "bytelm.io", "bytelm.precision", "bytelm.config",
       "bytelm.overrides", "bytelm.options",
       "bytelm.registry", "bytelm.nn", "bytelm.ops", "bytelm.models", "bytelm.patching",
       "bytelm.optim", "bytelm.data")
HIGH = ("bytelm.train", "bytelm.eval", "bytelm.generate", "bytelm.live", "bytelm.bench",
        "bytelm.experiments", "bytelm.cli")
# experiments train and score; only the CLI (and benchmark scripts, outside the package) run them
EXPERIMENTS_USERS = ("bytelm.experiments", "bytelm.cli")


def _name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """{module: the bytelm modules it imports}; ``from pkg import sub`` counts as pkg.sub."""
    files = {_name(p, src): p for p in (src / "bytelm").rglob("*.py")}
    graph = {}
    for mod, path in files.items():
        pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        out = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names if a.name in files)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: up from this module's package
                    up = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    out.add(sub if sub in files else base)
        graph[mod] = {m for m in out if m in files and m != mod}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
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
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _under(mod: str, prefixes) -> bool:
    return any(mod == p or mod.startswith(p + ".") for p in prefixes)


def test_cycles_finder():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(g) == [["a", "b", "c"]] and cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = import_graph()
    assert {"bytelm.io", "bytelm.precision", "bytelm.train.loop"} <= graph.keys()
    assert "bytelm.precision" in graph["bytelm.eval.bpb"]  # lazy imports are read too
    found = cycles(graph)
    assert not found, "import cycles: " + "; ".join(
        " <-> ".join(c) + " (" + ", ".join(f"{a} -> {sorted(graph[a] & set(c))}" for a in c) + ")"
        for c in found)


def test_no_upward_imports():
    up = sorted(f"{m} -> {t}" for m, ts in import_graph().items() if _under(m, LOW)
                for t in ts if _under(t, HIGH))
    assert not up, "lower layers import from higher ones: " + "; ".join(up)


def test_eval_only_scores():
    """Experiments (which train models) sit above eval: only the CLI imports them, and
    ``bytelm.eval`` imports neither an experiment nor the trainer."""
    graph = import_graph()
    assert "bytelm.experiments.kasgarli" in graph
    bad = sorted(f"{m} -> {t}" for m, ts in graph.items() for t in ts
                 if _under(t, ("bytelm.experiments",)) and not _under(m, EXPERIMENTS_USERS))
    bad += sorted(f"{m} -> {t}" for m, ts in graph.items() if _under(m, ("bytelm.eval",))
                  for t in ts if _under(t, ("bytelm.train.loop", "bytelm.train.step")))
    assert not bad, "imports of experiments from below, or training from eval: " + "; ".join(bad)
