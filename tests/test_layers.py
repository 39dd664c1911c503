"""The layers import downward only, and no module imports itself back through another.

    interfaces (cli, server, eval) -> api, batch -> jobs -> the engine (generation, cluster) ->
    request, models, video, device, schedulers, errors, home, jsontext, train, control, memory

Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import promptreel

ROOT = Path(promptreel.__file__).parent

# Higher layers may import lower ones, never the other way. The package's own __init__ is the
# public face (it re-exports lazily from every layer) and is left out.
LAYERS = [
    ("promptreel.cli", "promptreel.server", "promptreel.eval"),
    ("promptreel.api", "promptreel.batch"),
    ("promptreel.jobs",),
    ("promptreel.generation", "promptreel.planning", "promptreel.cluster"),
    (
        "promptreel.request",
        "promptreel.models",
        "promptreel.video",
        "promptreel.device",
        "promptreel.schedulers",
        "promptreel.errors",
        "promptreel.home",
        "promptreel.jsontext",
        "promptreel.train",
        "promptreel.control",
        "promptreel.memory",
    ),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:])
    return (ROOT / relative).with_suffix(".py").is_file() or (ROOT / relative).is_dir()


def _imports() -> dict[str, set[str]]:
    """module -> the promptreel modules it imports (at any depth of the file)."""
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("promptreel")}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{base}.{node.module}" if node.module else base
                elif node.module and node.module.startswith("promptreel"):
                    base = node.module
                else:
                    continue
                for alias in node.names:  # `from . import generate` names a module
                    sub = f"{base}.{alias.name}"
                    found.add(sub if _is_module(sub) else base)
        graph[name] = found - {name, "promptreel"}
    return graph


def _layer(module: str) -> int | None:
    for index, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return None


def test_no_import_cycle() -> None:
    graph = _imports()
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if state.get(target) is None:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_layers_import_downward_only() -> None:
    upward = []
    for module, targets in _imports().items():
        here = _layer(module)
        for target in targets:
            there = _layer(target)
            if here is not None and there is not None and there < here:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports against the layers: " + ", ".join(sorted(upward))


def test_every_module_has_a_layer() -> None:
    unplaced = {m for m in _imports() if m != "promptreel" and _layer(m) is None}
    unplaced -= {"promptreel.__main__"}
    assert not unplaced, f"place these in LAYERS: {sorted(unplaced)}"
