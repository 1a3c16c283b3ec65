"""The import graph of picloud/ has no cycle, imports inside functions included.

A static walk of every module's ``import`` statements: an edge goes from a module to
each module of ``picloud`` it names (``from picloud.x import y`` names ``picloud.x.y``
when that is a module, else ``picloud.x``). A package's ``__init__`` is not counted as
imported by its own submodules, as Python runs it before them anyway.
"""
import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "picloud"


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def resolve(module, level, current, is_package):
    """Return the absolute name of an import written in module ``current``."""
    if not level:
        return module
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imports_of(name, path):
    """Return the picloud modules that module ``name`` imports anywhere in its code."""
    found = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = resolve(node.module, node.level, name, is_package)
            for alias in node.names:
                child = f"{target}.{alias.name}"
                found.add(child if child in MODULES else target)
    return {module for module in found if module in MODULES and module != name}


def graph():
    return {name: imports_of(name, path) for name, path in MODULES.items()}


def find_cycle(edges):
    """Return one cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_walk_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "late.py"
    module.write_text("def f():\n    from picloud import orchestrator\n    import picloud.cache\n")
    assert imports_of("picloud.late", module) == {"picloud.orchestrator", "picloud.cache"}


def test_a_cycle_is_found():
    edges = {"picloud.a": {"picloud.b"}, "picloud.b": {"picloud.c"}, "picloud.c": {"picloud.a"}}
    assert find_cycle(edges) == ["picloud.a", "picloud.b", "picloud.c", "picloud.a"]
    assert find_cycle({"picloud.a": {"picloud.b"}, "picloud.b": set()}) is None


def test_picloud_has_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


# Each module imported first, in a fresh set of modules: an import that only works
# when another module happened to be loaded before fails here.
_IMPORT_EACH = r"""
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "picloud" or m.startswith("picloud.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc(limit=3))
print("\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_first():
    # __main__ modules run their command when imported.
    names = [name for name in MODULES if not name.endswith("__main__")]
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, *names], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
