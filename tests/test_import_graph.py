"""nncas's modules import one another without a circle: every import counts, those inside
functions too, and importing ``nncas.a.b`` counts as importing the package ``nncas.a`` (whose
``__init__`` runs first); left out are the edges to the top package ``nncas`` and from a module
to the packages holding it (Python runs those first anyway)."""
import ast
from pathlib import Path

import nncas

ROOT = Path(nncas.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = ("nncas", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set) -> set:
    """The nncas modules and packages ``path`` imports (with the packages above each)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                base = ".".join(anchor[:len(anchor) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            found |= {".".join(parts[:k]) for k in range(2, len(parts) + 1)} & modules
    parts = name.split(".")
    return found - {".".join(parts[:k]) for k in range(1, len(parts) + 1)}


def _cycle(graph: dict) -> list | None:
    """One circle of ``graph`` (module -> imported modules), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_nncas_has_no_import_circle():
    paths = sorted(ROOT.rglob("*.py"))
    modules = {_module_name(path) for path in paths}
    graph = {_module_name(path): _imports(path, modules) for path in paths}
    assert "nncas.kkt.shape" in graph["nncas.kkt.plan"] and "nncas.kkt" in graph["nncas.solve"]
    circle = _cycle(graph)
    assert circle is None, "import circle: " + " -> ".join(circle)
