"""Guards for the package layout (STYLE.md, habit 13).

An AST walk over every module of ``keepbase/`` resolves each import (absolute or relative, at
module level or inside a function) to a top-level keepbase package and checks it against the
import tiers in STYLE.md. Imports under ``if TYPE_CHECKING:`` are type-only: they are allowed for
``api`` → ``app`` ("App only as a type") and nowhere else.
"""

from __future__ import annotations

import ast
import inspect
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

import keepbase
from keepbase.core import errors as core_errors

PKG_ROOT = Path(keepbase.__file__).parent

# folder → the keepbase parts it may import (besides itself). From STYLE.md's layout table.
LEAVES = {"core", "security", "rules", "files", "mail"}
DOMAIN = {"store", "auth", "realtime", "ops"}
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "security": {"core"},
    "rules": {"core"},
    "files": {"core", "security"},
    "mail": {"core"},
    "store": {"core", "security", "rules", "files"},
    "auth": {"core", "security", "mail", "store"},
    "realtime": {"core", "rules", "store"},
    "ops": {"core", "security", "files", "store"},
    "api": LEAVES | DOMAIN,
    "admin": {"core"},
    "app": LEAVES | DOMAIN | {"api", "admin", "__init__"},
    "cli": {"app", "core"} | DOMAIN,
    "__main__": {"cli"},
    "__init__": LEAVES | DOMAIN | {"api", "admin", "app", "cli"},
}
TYPE_ONLY_ALLOWED: dict[str, set[str]] = {"api": {"app"}}


@dataclass(frozen=True)
class Edge:
    source: str  # dotted module name
    target: str  # dotted module name
    lineno: int
    type_only: bool


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG_ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _resolve(module: str, is_pkg: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = module.split(".")
    if not is_pkg:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, is_pkg: bool) -> None:
        self.module = module
        self.is_pkg = is_pkg
        self.edges: list[Edge] = []
        self._type_only = 0

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        is_tc = (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
        if is_tc:
            self._type_only += 1
            for child in node.body:
                self.visit(child)
            self._type_only -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.edges.append(Edge(self.module, alias.name, node.lineno, self._type_only > 0))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = _resolve(self.module, self.is_pkg, node.level, node.module)
        for alias in node.names:
            # ``from . import resolver`` imports a submodule: record the fuller name
            full = f"{base}.{alias.name}" if base else alias.name
            self.edges.append(Edge(self.module, full if node.module is None else base, node.lineno,
                                   self._type_only > 0))


def _all_edges() -> list[Edge]:
    edges: list[Edge] = []
    for path in sorted(PKG_ROOT.rglob("*.py")):
        if "static" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        collector = _Collector(_module_name(path), _is_package(path))
        collector.visit(tree)
        edges.extend(collector.edges)
    return edges


def _part(dotted: str) -> str | None:
    """keepbase.store.records → store; keepbase.app → app; keepbase → __init__; other → None."""
    parts = dotted.split(".")
    if parts[0] != "keepbase":
        return None
    if len(parts) == 1:
        return "__init__"
    return parts[1]


EDGES = _all_edges()


def test_walk_sees_the_package() -> None:
    """The walk must actually find keepbase imports, or every other test here passes vacuously."""
    sources = {_part(e.source) for e in EDGES}
    assert {"core", "store", "api", "app", "rules"} <= sources
    internal = [e for e in EDGES if _part(e.target) is not None]
    assert len(internal) > 50
    # relative imports resolve to real modules
    assert any(e.source == "keepbase.store.records" and e.target == "keepbase.core.errors" for e in EDGES)
    assert any(e.source == "keepbase.api.deps" and e.target == "keepbase.app" and e.type_only for e in EDGES)


def test_resolve_relative_imports() -> None:
    assert _resolve("keepbase.store.records", False, 2, "core.errors") == "keepbase.core.errors"
    assert _resolve("keepbase.store", True, 1, "db") == "keepbase.store.db"
    assert _resolve("keepbase.store.fields.base", False, 3, "core.errors") == "keepbase.core.errors"
    assert _resolve("keepbase", True, 1, "core.config") == "keepbase.core.config"


def _violations(source_part: str) -> list[str]:
    bad = []
    for e in EDGES:
        if _part(e.source) != source_part:
            continue
        target = _part(e.target)
        if target is None or target == source_part:
            continue
        if target in ALLOWED[source_part]:
            continue
        if e.type_only and target in TYPE_ONLY_ALLOWED.get(source_part, set()):
            continue
        bad.append(f"{e.source}:{e.lineno} imports {e.target}" + (" (type only)" if e.type_only else ""))
    return bad


def test_core_imports_nothing_else_of_keepbase() -> None:
    assert _violations("core") == []


@pytest.mark.parametrize("leaf", ["security", "rules", "files", "mail"])
def test_leaves_import_only_core(leaf: str) -> None:
    assert _violations(leaf) == []


@pytest.mark.parametrize("part", ["store", "auth", "realtime", "ops"])
def test_domain_does_not_import_edges(part: str) -> None:
    assert _violations(part) == []


def test_store_does_not_import_api_app_or_cli() -> None:
    bad = [e for e in EDGES if _part(e.source) == "store" and _part(e.target) in ("api", "app", "cli", "admin")]
    assert bad == []


@pytest.mark.parametrize("part", ["auth", "realtime", "ops"])
def test_domain_siblings_do_not_import_each_other(part: str) -> None:
    others = {"auth", "realtime", "ops"} - {part}
    bad = [e for e in EDGES if _part(e.source) == part and _part(e.target) in others]
    assert bad == []


@pytest.mark.parametrize("part", ["api", "admin", "app", "cli", "__main__"])
def test_edges_follow_the_tiers(part: str) -> None:
    assert _violations(part) == []


def test_nothing_imports_tests() -> None:
    bad = [f"{e.source}:{e.lineno}" for e in EDGES if e.target == "tests" or e.target.startswith("tests.")]
    assert bad == []


def test_every_module_belongs_to_a_known_part() -> None:
    unknown = {_part(e.source) for e in EDGES} - set(ALLOWED)
    assert unknown == set()


# --- public surface ---------------------------------------------------------------------------

def _public_names() -> list[str]:
    return [
        name for name, value in vars(keepbase).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"  # ``from __future__ import annotations``
    ]


def test_all_is_sorted() -> None:
    assert keepbase.__all__ == sorted(keepbase.__all__)


def test_all_equals_exported_public_names() -> None:
    assert sorted(_public_names()) == keepbase.__all__


def test_all_names_resolve() -> None:
    for name in keepbase.__all__:
        assert getattr(keepbase, name) is not None


def test_every_api_error_class_is_exported() -> None:
    """Habit 5/14: the error classes are public; a new one must not be forgotten in ``__all__``."""
    classes = {name for name, obj in vars(core_errors).items()
               if inspect.isclass(obj) and issubclass(obj, core_errors.ApiError)}
    assert classes, "no error classes found"
    assert classes <= set(keepbase.__all__), sorted(classes - set(keepbase.__all__))


def test_app_factory_is_public() -> None:
    """STYLE.md: ``__init__`` exposes App (built by ``create_app``) next to Config and the errors."""
    from keepbase.app import App, create_app

    assert keepbase.App is App
    assert keepbase.create_app is create_app
    assert keepbase.Config.__module__ == "keepbase.core.config"
