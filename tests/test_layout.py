"""The tree shows the architecture: layers import downwards only, no module cycles, and the
engine runs in a process where the notebook libraries cannot be imported."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import hermes_jupyter as hj

PACKAGE = Path(hj.__file__).parent

# Each layer may import itself and the layers listed here; `testing` stands alone (it is the
# fake model server), the faces sit on top.
ALLOWED = {
    "core": {"core"},
    "tools": {"tools", "core"},
    "engine": {"engine", "tools", "core"},
    "testing": {"testing"},
    "demo": {"demo", "engine", "tools", "core", "testing"},
    "notebook": {"notebook", "demo", "engine", "tools", "core", "testing"},
    "": {"", "engine", "tools", "core", "notebook"},  # __init__ and the parent_tools alias
}
FACE_LIBRARIES = ("IPython", "ipywidgets", "anywidget", "ipykernel", "traitlets")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        out[".".join(["hermes_jupyter", *parts])] = path
    return out


def _imports(module: str, path: Path) -> list[tuple[str, bool]]:
    """(imported module, type-checking only) for every import in `path`."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(n) for n in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" for a in node.names]
            for name in [target, *names]:
                found.append((name, id(node) in type_only))
        elif isinstance(node, ast.Import):
            found += [(a.name, id(node) in type_only) for a in node.names]
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 2 and parts[1] in ("parent_tools",):
        return ""
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ALLOWED) else ""


def test_layers_import_downwards_only():
    modules = _modules()
    wrong = []
    for module, path in modules.items():
        layer = _layer(module)
        for target, _ in _imports(module, path):
            if not target.startswith("hermes_jupyter.") or target not in modules:
                continue
            if _layer(target) not in ALLOWED[layer]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_engine_tools_and_core_never_import_face_libraries():
    modules = _modules()
    wrong = [
        f"{module} imports {target}"
        for module, path in modules.items() if _layer(module) in ("core", "tools", "engine")
        for target, _ in _imports(module, path)
        if target.split(".")[0] in FACE_LIBRARIES
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles_between_modules():
    """Type-checking imports count too: a cycle there is still two modules knowing each
    other. Package `__init__` re-exports are left out (they only gather names)."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        if path.name == "__init__.py":
            continue
        for target, _ in _imports(module, path):
            if target in modules and target != module and modules[target].name != "__init__.py":
                graph[module].add(target)
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" → ".join([*stack[stack.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


def test_faces_use_no_underscore_members_of_engine_objects():
    """Notebook and demo code reads tasks and sessions through public names only."""
    wrong = []
    for module, path in _modules().items():
        if _layer(module) not in ("notebook", "demo"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Name)
                    and node.value.id in ("task", "session", "t", "s", "control")):
                wrong.append(f"{module}:{node.lineno} {node.value.id}.{node.attr}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("limit", [450])
def test_no_module_is_much_over_400_lines(limit):
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > limit}
    assert not long


def test_engine_stands_alone_without_notebook_libraries(tmp_path):
    """In a process where importing IPython, ipywidgets or anywidget raises, the package
    imports and a Session runs a task on FakeLLM to `succeeded`."""
    script = textwrap.dedent(f"""
        import sys

        class Refuse:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {FACE_LIBRARIES!r}:
                    raise ImportError(f"{{name}} is blocked in this test")
                return None

        sys.meta_path.insert(0, Refuse())
        import hermes_jupyter as hj
        from hermes_jupyter.testing import FakeLLM, Reply
        from hermes_jupyter.parent_tools import session_tools

        with FakeLLM() as llm:
            llm.default = Reply(text="standalone answer")
            with hj.Session(model="m", base_url=llm.base_url, api_keys=["k"],
                            workspace={str(tmp_path)!r}) as s:
                result = s.delegate("do it").collect(timeout=30)
                assert len(session_tools(s)) == 6
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {FACE_LIBRARIES!r})
        print(result.state.value, result.summary, loaded)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "succeeded standalone answer []"


def test_every_public_name_resolves():
    """`hj.__all__` is the public API: each name must be there (lazy ones included)."""
    missing = [name for name in hj.__all__ if not hasattr(hj, name)]
    assert not missing
