"""The package's import graph, read from the source with ``ast``: no cycle between modules, no import from a lower
layer into a higher one, and no import inside a function except where listed below with its reason.

An import of ``a.b.c`` also runs the ``__init__`` of ``a.b`` (unless the importing module is itself inside ``a.b``),
so such an import is an edge to both; that is how a package whose ``__init__`` imports too much closes a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "motiontransfer"
SOURCE = Path(__file__).resolve().parents[1] / "src" / PACKAGE

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "fileio", "config"),
    ("ops", "nn", "video", "checkpoint", "pretrained"),
    ("visualize", "losses"),
    ("data",),
    ("models", "engine", "params"),
    ("registry", "inference", "convert", "convert.torch_checkpoint", "convert.networks"),
    ("families",),
    ("experiment", "evaluation"),
    ("training", "convert.official", "preprocess"),
    ("api",),
    ("demo", "web", "cli", "__main__", ""),
)
"""Layers from the bottom up, by module prefix (the longest prefix decides; ``""`` is the package itself): a module
may import its own layer and the ones below, never one above."""

FUNCTION_LEVEL_IMPORTS: dict[str, str] = {
    "": "`import motiontransfer` stays light: `motiontransfer.load` and `Animator` import the API on first use",
    "cli": "each command imports its implementation when it runs, so that `motiontransfer --help` and flag errors "
           "answer in 0.3 s without loading torch and the model stack (2.3 s)",
    "web": "an entry point like the CLI: the page imports the model stack when a job runs, so that it starts light",
}
"""Modules (by prefix) allowed to import package modules inside functions, with the reason. Such imports are edges of
the graph too, so they cannot hide a cycle."""


def module_name(path: Path) -> str:
    """``src/motiontransfer/a/b.py`` -> ``motiontransfer.a.b``; a package's ``__init__.py`` -> the package."""
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(path): path for path in sorted(SOURCE.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def imported_modules(name: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The package modules an import statement of module ``name`` loads (a ``from x import y`` loads ``x.y`` when
    that is a module)."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = name if is_package(name) else name.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
    for target in targets:
        if target == PACKAGE or target.startswith(PACKAGE + "."):
            while target not in MODULES:
                target = target.rpartition(".")[0]
            yield target


def imports(name: str) -> Iterator[tuple[str, bool, int]]:
    """(imported module, inside a function?, line) for every package import of module ``name``."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))

    def walk(node: ast.AST, in_function: bool) -> Iterator[tuple[str, bool, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                for target in imported_modules(name, child):
                    yield target, in_function, child.lineno
            else:
                yield from walk(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))

    yield from walk(tree, False)


def edges(name: str) -> set[str]:
    """Every module that importing ``name`` makes Python import first: each imported module and its packages'
    ``__init__`` (except the packages ``name`` is inside, which are already being imported)."""
    ancestors = {name.rsplit(".", depth)[0] for depth in range(name.count(".") + 1)}
    found: set[str] = set()
    for target, _, _ in imports(name):
        parts = target.split(".")
        for end in range(1, len(parts) + 1):
            prefix = ".".join(parts[:end])
            if prefix not in ancestors and prefix != name:
                found.add(prefix)
    return found


def layer(name: str) -> int:
    relative = name[len(PACKAGE) + 1:] if name != PACKAGE else ""
    best, best_length = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (relative == prefix or relative.startswith(prefix + ".") or prefix == "") and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    assert best is not None, f"{name} belongs to no layer"
    return best


def allowed_function_level(name: str) -> bool:
    relative = name[len(PACKAGE) + 1:] if name != PACKAGE else ""
    return any(relative == prefix or (prefix and relative.startswith(prefix + "."))
               for prefix in FUNCTION_LEVEL_IMPORTS)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (its modules in import order, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for neighbour in sorted(graph[node]):
            if state.get(neighbour) == 1:
                return [*path[path.index(neighbour):], neighbour]
            if neighbour not in state and (cycle := visit(neighbour)) is not None:
                return cycle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_the_module_graph_has_no_cycle() -> None:
    graph = {name: edges(name) for name in MODULES}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_imports_a_higher_layer() -> None:
    back_arrows = sorted({f"{name} (layer {layer(name)}) imports {target} (layer {layer(target)}), line {line}"
                          for name in MODULES for target, _, line in imports(name) if layer(target) > layer(name)})
    assert not back_arrows, "\n".join(back_arrows)


def test_imports_inside_functions_are_only_where_listed() -> None:
    lazy = sorted({f"{name}, line {line}: {target}" for name in MODULES for target, in_function, line in imports(name)
                   if in_function and not allowed_function_level(name)})
    assert not lazy, "imports inside functions (move them to the top, or list the module with a reason):\n" + \
        "\n".join(lazy)


def test_every_module_has_a_layer_and_the_known_cycles_are_gone() -> None:
    for name in MODULES:
        layer(name)
    assert layer(f"{PACKAGE}.visualize") < layer(f"{PACKAGE}.data.synthetic.writer")  # writer -> visualize is down
    assert f"{PACKAGE}.evaluation.prediction" not in edges(f"{PACKAGE}.inference.video")
    assert not any(target.startswith(f"{PACKAGE}.data") for target in edges(f"{PACKAGE}.visualize"))


def library_strings() -> Iterator[tuple[str, int, str]]:
    """(module, line, text) of every string constant outside the command-line modules, docstrings excluded."""
    for name, path in MODULES.items():
        if allowed_function_level(name) and name != PACKAGE:  # the entry points (cli, web) name their flags
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                      and node.body and isinstance(node.body[0], ast.Expr)
                      and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                yield name, node.lineno, node.value


def test_library_messages_name_no_command_line_flag_and_the_cli_spells_every_term() -> None:
    import re

    from motiontransfer.cli import FLAGS

    flags = sorted({f"{name}, line {line}: {text!r}" for name, line, text in library_strings()
                    if re.search(r"(^|[\s(])--[a-z]", text)})
    assert not flags, "library strings that name a flag (raise ArgumentError with a Term instead):\n" + "\n".join(flags)
    terms = {match for path in MODULES.values()
             for match in re.findall(r'Term\("([a-z_]+)"\)', path.read_text(encoding="utf-8"))}
    assert terms and terms <= set(FLAGS), f"terms the CLI cannot spell: {sorted(terms - set(FLAGS))}"
