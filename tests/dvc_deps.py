"""What a stage script runs, derived from the source: the package modules it imports, transitively.

Imports are read from the syntax tree wherever they are written (module level or inside a
function: a lazy import still runs when the stage calls that function), so the answer is what
`dvc.yaml` must declare for DVC never to call a stale result "up to date".
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "mlbert"


def module_path(src: Path, module: str) -> Path | None:
    """The file of a dotted `mlbert...` module name under `src`, or None if it is not there."""
    parts = module.split(".")
    for candidate in (src.joinpath(*parts).with_suffix(".py"), src.joinpath(*parts, "__init__.py")):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, src: Path) -> set[str]:
    """The dotted names of the package modules that the file at `path` imports directly."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = None
    if src in path.parents:
        package = ".".join(path.relative_to(src).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            found.add(stem)
            # `from mlbert import paths` names a module; `from mlbert.x import f` names a function
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == PACKAGE and module_path(src, name)}


def package_files_run_by(script: Path, src: Path) -> set[Path]:
    """Every package file that running `script` imports, directly or through other modules; a
    submodule brings its package's __init__.py with it."""
    seen: set[Path] = set()
    frontier = [module_path(src, name) for name in imported_modules(script, src)]
    while frontier:
        path = frontier.pop()
        if path is None or path in seen:
            continue
        seen.add(path)
        init = path.parent / "__init__.py"
        if init.is_file():
            frontier.append(init)
        frontier.extend(module_path(src, name) for name in imported_modules(path, src))
    return seen
