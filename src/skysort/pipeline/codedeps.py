"""Which source files a stage's code runs: the code deps ``dvc.yaml`` must list.

DVC reruns a stage when one of its deps changes; a dep list written by hand drifts
from the imports, and then an edit leaves ``dvc status`` clean and the outputs
stale. This walks the imports of a stage's module (module-level and inside
functions, directly and transitively) within the ``skysort`` package, so a test
(and ``skysort deps``) can compare it with ``dvc.yaml``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for the annotation: the stages import this package's modules
    from skysort.pipeline.stage import Stage

PACKAGE = "skysort"
SRC = Path(__file__).resolve().parents[1]
ROOT = SRC.parents[1]
"""The project root: ``dvc.yaml`` names code deps relative to it."""


def module_file(module: str) -> Path | None:
    """The file of a ``skysort`` module (``skysort.x.y``), or None if it is not one."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = SRC.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path, module: str) -> set[str]:
    """Every ``skysort`` module ``path`` imports, anywhere in the file."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            found.add(base)
            # `from skysort.data import atomic` imports the submodule skysort.data.atomic
            found |= {f"{base}.{a.name}" for a in node.names if module_file(f"{base}.{a.name}")}
    return {m for m in found if m.split(".")[0] == PACKAGE}


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _has_code(path: Path) -> bool:
    """False for a file that holds only a docstring (an empty package ``__init__``)."""
    body = ast.parse(path.read_text()).body
    return not all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def code_deps(module: str) -> list[Path]:
    """The source files module ``module`` runs when imported and called, sorted.

    Importing a module runs its packages' ``__init__`` files too; those that hold
    only a docstring are left out, since no edit of them can change an output.
    """
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        for name in _with_parents(current):
            if name in seen or module_file(name) is None:
                continue
            seen.add(name)
            todo.extend(_imported_modules(module_file(name), name))  # type: ignore[arg-type]
    files = {module_file(m) for m in seen}
    return sorted(f for f in files if f is not None and _has_code(f))


def deps_by_stage(stages: Iterable[Stage]) -> dict[str, list[str]]:
    """Each stage's code deps as ``dvc.yaml`` writes them (paths relative to the project root)."""
    return {s.name: [str(p.relative_to(ROOT)) for p in code_deps(s.module)] for s in stages}


def sync_deps(dvc_yaml: str, deps: dict[str, list[str]]) -> str:
    """``dvc.yaml``'s text with each stage's code deps (``src/`` lines) replaced by ``deps``.

    Only the ``      - src/...`` lines of each stage's ``deps:`` list change (the new
    ones follow the data deps); comments and everything else stay as written, so the
    file stays readable by hand.
    """
    out: list[str] = []
    stage: str | None = None
    in_deps = False

    def close_deps() -> None:
        out.extend(f"      - {path}\n" for path in deps.get(stage or "", []))

    for line in dvc_yaml.splitlines(keepends=True):
        if in_deps and not line.startswith("      - "):
            in_deps = False
            close_deps()
        if re.match(r"^  [A-Za-z_][\w-]*:\s*$", line):
            stage = line.strip().rstrip(":")
        elif re.match(r"^    deps:\s*$", line):
            in_deps = True
        elif in_deps and line.strip().startswith("- src/"):
            continue
        out.append(line)
    if in_deps:
        close_deps()
    return "".join(out)
