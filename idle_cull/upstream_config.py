"""Upstream's ``idle_culler_config.py`` (jupyterhub-idle-culler 2.0), read without running it.

Upstream executes this Python file. idle-cull only parses it (``ast``) and accepts what a
configuration file needs: comments, docstrings, the ``c = get_config()`` line that
upstream's generated files start with, and ``c.IdleCuller.<name> = <literal>``. Anything
else (imports, functions, ``cull_arbiter_hook``, expressions) is refused with its line
number: running an operator's code, or quietly skipping it, would both make a pass do
something other than what the file says.
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass

from idle_cull.errors import ConfigError

__all__ = ["UPSTREAM_SETTINGS", "UpstreamSetting", "read_upstream_config"]


@dataclass(frozen=True)
class UpstreamSetting:
    """How one upstream ``IdleCuller`` trait maps onto idle-cull.

    ``option`` is the idle-cull long option with the same meaning, or ``None`` when the
    setting is refused; ``kind`` is the trait's type (``int``, ``bool``, ``str``,
    ``log_level``); ``instead`` says what replaces a refused setting.
    """

    option: str | None
    kind: str = ""
    instead: str = ""


_RULES = "--profile-timeout, --group-timeout, --server-timeout, --exclude-user or --exclude-group"

# Every configurable trait of jupyterhub-idle-culler 2.0.0's IdleCuller (including the
# ones it inherits from traitlets' Application), and what becomes of it here.
UPSTREAM_SETTINGS: dict[str, UpstreamSetting] = {
    "api_page_size": UpstreamSetting("api-page-size", "int"),
    "concurrency": UpstreamSetting("concurrency", "int"),
    "cull_admin_users": UpstreamSetting("cull-admin-users", "bool"),
    "cull_default_servers": UpstreamSetting("cull-default-servers", "bool"),
    "cull_every": UpstreamSetting("cull-every", "int"),
    "cull_named_servers": UpstreamSetting("cull-named-servers", "bool"),
    "cull_users": UpstreamSetting("cull-users", "bool"),
    "internal_certs_location": UpstreamSetting("internal-certs-location", "str"),
    "max_age": UpstreamSetting("max-age", "int"),
    "remove_named_servers": UpstreamSetting("remove-named-servers", "bool"),
    "ssl_enabled": UpstreamSetting("ssl-enabled", "bool"),
    "timeout": UpstreamSetting("timeout", "int"),
    "url": UpstreamSetting("url", "str"),
    "log_level": UpstreamSetting("log-level", "log_level"),
    "cull_arbiter_hook": UpstreamSetting(
        None,
        instead=f"a Python hook cannot be read without running it; write its rule as {_RULES}",
    ),
    "config_file": UpstreamSetting(
        None, instead="a config file cannot name another: pass --config FILE"
    ),
    "generate_config": UpstreamSetting(None, instead="run idle-cull --generate-config"),
    "log_format": UpstreamSetting(None, instead="use --log-format text or json"),
    "log_datefmt": UpstreamSetting(None, instead="use --log-format text or json"),
    "show_config": UpstreamSetting(
        None, instead="idle-cull logs its effective settings at the start of every pass"
    ),
    "show_config_json": UpstreamSetting(
        None, instead="idle-cull logs its effective settings at the start of every pass"
    ),
}

# Upstream's log_level takes logging's numbers or names; idle-cull's --log-level the names.
_LOG_LEVELS = {10: "debug", 20: "info", 30: "warning", 40: "error"}
_LOG_LEVEL_NAMES = {
    "DEBUG": "debug",
    "INFO": "info",
    "WARN": "warning",
    "WARNING": "warning",
    "ERROR": "error",
}


def read_upstream_config(text: str, source: str) -> dict[str, object]:
    """The idle-cull option values an upstream config file sets, by long option name.

    ``source`` names the file in messages (``idle_culler_config.py:3: ...``). Raises
    ``ConfigError`` for anything that is not a plain literal setting. A setting assigned
    twice takes the later value, as when upstream runs the file.
    """
    try:
        tree = ast.parse(text, filename=source)
    except SyntaxError as error:
        raise ConfigError(f"{source}:{error.lineno}: not valid Python ({error.msg})") from None
    values: dict[str, object] = {}
    for statement in tree.body:
        setting = _statement_setting(statement, source)
        if setting is not None:
            option, value = setting
            values[option] = value
    return values


def _statement_setting(statement: ast.stmt, source: str) -> tuple[str, object] | None:
    """One statement's ``(option, value)``; ``None`` for the lines that set nothing."""
    where = f"{source}:{statement.lineno}"
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
        return None  # a docstring or a bare string
    if _is_get_config(statement):
        return None
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        raise ConfigError(
            f"{where}: imports are not allowed: idle-cull reads this file without running "
            "it; only c.IdleCuller.<name> = <value> lines are read"
        )
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
        raise ConfigError(
            f"{where}: functions are not allowed (idle-cull reads this file without running "
            f"it); a cull_arbiter_hook's rule can be written as {_RULES}"
        )
    if not isinstance(statement, ast.Assign) or len(statement.targets) != 1:
        raise ConfigError(
            f"{where}: only c.IdleCuller.<name> = <value> lines are allowed "
            "(idle-cull reads this file without running it)"
        )
    name = _idle_culler_name(statement.targets[0], where)
    return _setting(name, statement.value, where)


def _is_get_config(statement: ast.stmt) -> bool:
    """``c = get_config()``, the first line of upstream's generated files."""
    return (
        isinstance(statement, ast.Assign)
        and len(statement.targets) == 1
        and isinstance(statement.targets[0], ast.Name)
        and statement.targets[0].id == "c"
        and isinstance(statement.value, ast.Call)
        and isinstance(statement.value.func, ast.Name)
        and statement.value.func.id == "get_config"
        and not statement.value.args
        and not statement.value.keywords
    )


def _idle_culler_name(target: ast.expr, where: str) -> str:
    """``timeout`` from the target ``c.IdleCuller.timeout``; anything else is refused."""
    if (
        isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Attribute)
        and isinstance(target.value.value, ast.Name)
        and target.value.value.id == "c"
    ):
        if target.value.attr != "IdleCuller":
            raise ConfigError(
                f"{where}: c.{target.value.attr}.{target.attr} is not an idle culler setting; "
                "only c.IdleCuller.<name> settings are read"
            )
        return target.attr
    raise ConfigError(
        f"{where}: only c.IdleCuller.<name> = <value> lines are allowed "
        "(idle-cull reads this file without running it)"
    )


def _setting(name: str, node: ast.expr, where: str) -> tuple[str, object] | None:
    known = UPSTREAM_SETTINGS.get(name)
    if known is None:
        near = difflib.get_close_matches(name, list(UPSTREAM_SETTINGS), n=1)
        hint = f"; did you mean c.IdleCuller.{near[0]}?" if near else ""
        raise ConfigError(f"{where}: c.IdleCuller.{name} is not an upstream setting{hint}")
    if known.option is None:
        raise ConfigError(f"{where}: c.IdleCuller.{name} is not supported: {known.instead}")
    try:
        value = ast.literal_eval(node)
    except ValueError:
        raise ConfigError(
            f"{where}: c.IdleCuller.{name} must be a plain value (a number, a string, True "
            "or False), not an expression: idle-cull reads this file without running it"
        ) from None
    if value is None and name == "url":
        return None  # upstream's default: JUPYTERHUB_API_URL decides
    return known.option, _checked(name, known.kind, value, where)


def _checked(name: str, kind: str, value: object, where: str) -> object:
    """The value if upstream's trait type would take it (bool is not an int here)."""
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "log_level":
        level = _LOG_LEVELS.get(value) if isinstance(value, int) else None
        if isinstance(value, str):
            level = _LOG_LEVEL_NAMES.get(value.upper())
        if level is not None:
            return level
        raise ConfigError(
            f"{where}: c.IdleCuller.log_level {value!r} is not one of DEBUG, INFO, WARNING, "
            "ERROR (or 10, 20, 30, 40)"
        )
    wanted = {"int": "a whole number", "bool": "True or False", "str": "a string"}[kind]
    raise ConfigError(f"{where}: c.IdleCuller.{name} must be {wanted}, got {value!r}")
