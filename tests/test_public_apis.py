"""No name in idle_cull/ starts with an underscore and belongs to another package.

A private name of requests, urllib3 or any other dependency can change in any release;
one such change would break every request the tool makes (issue 22). The check reads the
package's syntax: a private attribute may only be reached through ``self`` or ``cls`` and
only when a class of idle_cull defines it, never through ``super()`` or another object,
and nothing private is imported from elsewhere. A second check imports the package and
finds the private methods and class attributes that override a dependency's (the old
transport overrode urllib3's ``_get_conn``).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "idle_cull"

# Documented public API of the standard library that happens to start with "_".
DOCUMENTED = {
    ("os", "_exit"),  # os._exit: exit without cleanup, for a signal handler
}
# What abc and typing's metaclasses put in every ABC and Protocol class: not ours to avoid.
CLASS_MACHINERY = {"_abc_impl", "_is_protocol", "_is_runtime_protocol"}


def is_private(name: str) -> bool:
    """``_x`` and ``__x``, but not dunders (``__name__``) or Enum's sunders (``_value_``)."""
    return name.startswith("_") and not name.endswith("_")


def own_names(tree: ast.Module) -> dict[str, set[str]]:
    """Per class name: the private names its body defines or its methods assign on self/cls."""
    names: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        own = names.setdefault(node.name, set())
        for child in ast.walk(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                own.add(child.name)
            elif isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                own.add(child.id)
            elif (
                isinstance(child, ast.Attribute)
                and isinstance(child.ctx, ast.Store)
                and isinstance(child.value, ast.Name)
                and child.value.id in ("self", "cls")
            ):
                own.add(child.attr)
    return names


def private_uses(source: str, ours: dict[str, set[str]] | None = None) -> list[str]:
    """Each private name of another package that ``source`` uses, as ``line: text``.

    ``ours`` maps the package's class names to their own private names (``own_names``);
    a class may use those of its bases when the bases are classes of the package.
    """
    tree = ast.parse(source)
    ours = ours if ours is not None else own_names(tree)
    found: list[str] = []

    def flag(node: ast.AST) -> None:
        found.append(f"{getattr(node, 'lineno', 0)}: {ast.unparse(node)}")

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not node.level:
            module = node.module or ""
            if not module.startswith("idle_cull") and (
                any(is_private(alias.name) for alias in node.names)
                or any(is_private(part) for part in module.split("."))
            ):
                flag(node)
        elif isinstance(node, ast.Import):
            if any(is_private(part) for a in node.names for part in a.name.split(".")):
                flag(node)
        elif isinstance(node, ast.Call) and _is_reflective_private(node):
            flag(node)
    for owner, node in _attributes(tree):
        if not is_private(node.attr):
            continue
        base = node.value
        if isinstance(base, ast.Name) and (base.id, node.attr) in DOCUMENTED:
            continue
        on_self = isinstance(base, ast.Name) and base.id in ("self", "cls")
        if on_self and owner is not None and node.attr in _inherited(owner, ours):
            continue
        flag(node)
    return found


def _is_reflective_private(node: ast.Call) -> bool:
    """``getattr(x, "_name")`` and its kin: a private name reached by its string."""
    return (
        isinstance(node.func, ast.Name)
        and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
        and is_private(node.args[1].value)
    )


def _attributes(tree: ast.AST) -> Iterator[tuple[ast.ClassDef | None, ast.Attribute]]:
    """Every attribute access, with the innermost class around it (``None`` outside)."""

    def walk(
        node: ast.AST, owner: ast.ClassDef | None
    ) -> Iterator[tuple[ast.ClassDef | None, ast.Attribute]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Attribute):
                yield owner, child
            yield from walk(child, child if isinstance(child, ast.ClassDef) else owner)

    return walk(tree, None)


def _inherited(owner: ast.ClassDef, ours: dict[str, set[str]]) -> set[str]:
    """The private names of ``owner`` and of those of its bases that are ours."""
    names = set(ours.get(owner.name, ()))
    pending = [base.id for base in owner.bases if isinstance(base, ast.Name)]
    seen: set[str] = set()
    while pending:
        base = pending.pop()
        if base in seen or base not in ours:
            continue
        seen.add(base)
        names |= ours[base]
    return names


def package_sources() -> dict[Path, str]:
    return {path: path.read_text() for path in sorted(PACKAGE.rglob("*.py"))}


def test_the_package_uses_no_private_name_of_another_package() -> None:
    sources = package_sources()
    ours: dict[str, set[str]] = {}
    for source in sources.values():
        for name, own in own_names(ast.parse(source)).items():
            ours.setdefault(name, set()).update(own)
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{use}"
        for path, source in sources.items()
        for use in private_uses(source, ours)
    ]
    assert found == []


def overridden_privates(module: object) -> list[str]:
    """Private names that a class of ``module`` defines over one of another package's."""
    found = []
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__module__ != getattr(module, "__name__", None):
            continue
        for name in vars(cls):
            foreign = [
                base
                for base in cls.__mro__[1:]
                if not base.__module__.startswith("idle_cull") and name in vars(base)
            ]
            if is_private(name) and name not in CLASS_MACHINERY and foreign:
                found.append(f"{cls.__module__}.{cls.__qualname__}.{name}")
    return found


def test_no_class_overrides_a_private_name_of_another_package() -> None:
    import idle_cull  # noqa: PLC0415

    modules = [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(idle_cull.__path__, "idle_cull.")
    ]
    assert [name for module in modules for name in overridden_privates(module)] == []


def test_the_override_check_sees_an_overridden_private_method() -> None:
    import types  # noqa: PLC0415

    from urllib3.connectionpool import HTTPConnectionPool  # noqa: PLC0415

    module = types.ModuleType("idle_cull.sample")
    pool = type("Pool", (HTTPConnectionPool,), {"_get_conn": lambda self: None})
    pool.__module__ = module.__name__
    module.Pool = pool  # type: ignore[attr-defined]
    assert overridden_privates(module) == ["idle_cull.sample.Pool._get_conn"]


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(
            "class P(HTTPConnectionPool):\n"
            "    def _get_conn(self, t):\n"
            "        return super()._get_conn(t)\n",
            id="super-private-method",
        ),
        pytest.param("def f(response):\n    response._content = b''\n", id="private-attribute"),
        pytest.param(
            "class A(HTTPAdapter):\n    def f(self):\n        return self._pool_kw_lock\n",
            id="inherited-private-attribute",
        ),
        pytest.param("from urllib3.util import _x\n", id="private-import"),
        pytest.param("from urllib3._collections import HTTPHeaderDict\n", id="private-module"),
        pytest.param("import urllib3._version\n", id="private-module-import"),
        pytest.param("def f(r):\n    return getattr(r, '_content', None)\n", id="getattr"),
    ],
)
def test_the_check_sees_a_private_name_of_another_package(source: str) -> None:
    assert len(private_uses(source)) == 1


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(
            "class T:\n"
            "    def __init__(self):\n"
            "        self._lock = 1\n"
            "    def f(self):\n"
            "        return self._lock\n",
            id="own-attribute",
        ),
        pytest.param(
            "class B:\n"
            "    def __init__(self):\n"
            "        self._x = 1\n"
            "class C(B):\n"
            "    def f(self):\n"
            "        return self._x\n",
            id="attribute-of-our-base",
        ),
        pytest.param("import os\nos._exit(1)\n", id="documented-os-exit"),
        pytest.param("def f(member):\n    member._value_ = 1\n", id="enum-sunder"),
        pytest.param("from idle_cull.x import _helper\n", id="our-own-private"),
        pytest.param("x = type(1).__name__\n", id="dunder"),
    ],
)
def test_the_check_allows_what_is_ours_or_documented(source: str) -> None:
    assert private_uses(source) == []
