"""Data flows one way: attention_zoo <- lra <- runners -> results -> reports (docs/design.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"attention_zoo", "lra", "runners", "results", "reports"}
# what each package may import of ours (a package, or one module of it)
ALLOWED = {
    "attention_zoo": set(),
    "lra": {"attention_zoo", "results.files"},  # atomic writing, and nothing of the tables
    "runners": {"attention_zoo", "lra", "results"},
    "results": set(),
    "reports": {"results"},
}


def imports_of(package: str) -> dict[str, set[str]]:
    """Our top-level packages each module of `package` imports: {module path: packages}."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        ours = {n for n in names if n.split(".")[0] in OURS - {package}}
        found[str(path.relative_to(ROOT))] = ours
    return found


def allowed(package: str, module: str) -> bool:
    return module.split(".")[0] in ALLOWED[package] or module in ALLOWED[package]


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_what_is_upstream_of_it(package):
    found = imports_of(package).items()
    wrong = {m: sorted(n for n in names if not allowed(package, n)) for m, names in found}
    assert not {m: n for m, n in wrong.items() if n}


def test_the_schema_module_needs_only_pyarrow_and_pandas():
    tree = ast.parse((ROOT / "results" / "schema.py").read_text())
    top = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            top |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            top.add(node.module.split(".")[0])
    assert top - {"__future__", "collections", "json", "pathlib", "sys"} == {"pandas", "pyarrow"}


def test_no_module_imports_another_commands_command_line():
    for module, _ in imports_of("runners").items():
        text = (ROOT / module).read_text()
        command = Path(module).parent.name
        for other in ("sweep", "lra", "grid", "bench", "gpu_check"):
            if other != command:
                assert f"runners.{other}.cli" not in text, module
                assert f"runners.{other} import cli" not in text, module


def test_no_module_of_lra_imports_itself_through_others():
    """lra's modules form no circle of imports (the package's __init__, which only registers
    the tasks, apart); imports inside functions count too, a `__main__` block's do not (it
    runs when the file is the program, not when the module is imported)."""
    modules = {p.stem: p for p in (ROOT / "lra").glob("*.py") if p.stem != "__init__"}
    edges = {}
    for name, path in modules.items():
        found = set()
        body = [s for s in ast.parse(path.read_text()).body if "__main__" not in ast.unparse(s)]
        for node in ast.walk(ast.Module(body=body, type_ignores=[])):
            if isinstance(node, ast.ImportFrom) and node.module == "lra":
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lra."):
                found.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("lra.")}
        edges[name] = found & set(modules)

    def reaches(start: str, goal: str, seen: set) -> bool:
        return any(
            n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in edges[start]
        )

    assert not [m for m in modules if reaches(m, m, set())]
