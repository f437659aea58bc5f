"""Upstream's ``idle_culler_config.py`` (jupyterhub-idle-culler 2.0), read without running it.

Upstream executes this Python file. idle-cull only parses it (``ast``) and reads what a
configuration file needs: comments, docstrings, the ``c = get_config()`` line that
upstream's generated files start with, and ``c.IdleCuller.<name> = <value>`` (or
``c.Application.<name>`` for the logging traits upstream inherits), where the value is a
literal or constant arithmetic (``upstream_literals``). Every trait of upstream's
generated file is either mapped to an idle-cull option or ignored with one log line
saying why; anything else (imports, functions, a ``cull_arbiter_hook``, calls) is refused
with its line number and what to write instead: running an operator's code, or quietly
skipping it, would both make a pass do something other than what the file says.

Hostile input is bounded before and during parsing: the file's size (``config_file``),
the tokens of one statement here (CPython's parser and AST builder recurse per nesting
level), and the nesting of one value in ``upstream_literals``.
"""

from __future__ import annotations

import ast
import difflib
import io
import logging
import re
import tokenize
from dataclasses import dataclass

from idle_cull.command.upstream_literals import NotALiteral, literal_value
from idle_cull.errors import ConfigError

__all__ = [
    "APPLICATION_TRAITS",
    "MAX_STATEMENT_TOKENS",
    "UPSTREAM_SETTINGS",
    "UpstreamConfig",
    "UpstreamNote",
    "UpstreamSetting",
    "read_upstream_config",
]

# One statement of a config file is a handful of tokens; a logging_config dict a few
# hundred. Past this, CPython's parser spends memory and recursion on nothing useful.
MAX_STATEMENT_TOKENS = 1000

_DEFAULT_ARBITER = "<function default_cull_arbiter>"


@dataclass(frozen=True)
class UpstreamSetting:
    """What becomes of one upstream trait here: mapped, ignored, or refused.

    ``option`` is the idle-cull long option with the same meaning (``kind`` is the
    trait's type: ``int``, ``bool``, ``str``, ``log_level``). Otherwise the setting is
    ignored with one log line giving ``ignored`` as the reason, or, when ``ignored`` is
    empty or ``only_default`` is set and the value is not upstream's ``default``,
    refused with ``instead``: what to do instead.
    """

    option: str | None = None
    kind: str = ""
    ignored: str = ""
    default: object = None
    only_default: bool = False
    instead: str = ""


_RULES = "--profile-timeout, --group-timeout, --server-timeout, --exclude-user or --exclude-group"
_LOG_FORMAT = "idle-cull's log lines have one format of their own (--log-format text or json)"
_SHOWN = "idle-cull logs its effective settings at the start of every pass"

# Every configurable trait of jupyterhub-idle-culler 2.0.0's IdleCuller, as its
# --generate-config writes them (its own traits and the ones traitlets' Application adds),
# and what becomes of each here. docs/how-to/migrating-from-upstream.md explains each.
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
        ignored="upstream's default arbiter: the idle limits decide, as they do here",
        default=_DEFAULT_ARBITER,
        only_default=True,
        instead=f"a Python hook cannot be read without running it; write its rule as {_RULES}",
    ),
    "config_file": UpstreamSetting(
        ignored="naming a config file inside one changes nothing (in upstream neither); "
        "pass --config FILE to choose the file",
        default="idle_culler_config.py",
    ),
    "generate_config": UpstreamSetting(
        ignored="it is off",
        default=False,
        only_default=True,
        instead="upstream would print a config file instead of culling; remove the line "
        "(idle-cull --generate-config prints idle-cull's own)",
    ),
    "log_format": UpstreamSetting(
        ignored=_LOG_FORMAT, default="[%(name)s]%(highlevel)s %(message)s"
    ),
    "log_datefmt": UpstreamSetting(ignored=_LOG_FORMAT, default="%Y-%m-%d %H:%M:%S"),
    "logging_config": UpstreamSetting(
        ignored="idle-cull logs to stderr only, where its scheduler (systemd, cron, "
        "Kubernetes) keeps the log",
        default={},
    ),
    "show_config": UpstreamSetting(
        ignored=f"it is off; {_SHOWN}",
        default=False,
        only_default=True,
        instead=f"upstream would print its settings instead of culling; remove the line ({_SHOWN})",
    ),
    "show_config_json": UpstreamSetting(
        ignored=f"it is off; {_SHOWN}",
        default=False,
        only_default=True,
        instead=f"upstream would print its settings instead of culling; remove the line ({_SHOWN})",
    ),
}

# The traits IdleCuller inherits from traitlets' Application, which upstream's generated
# file also sets as c.Application.<name>. As in traitlets, c.IdleCuller.<name> (the
# subclass) wins over c.Application.<name> wherever either is written.
APPLICATION_TRAITS = frozenset(
    {"log_datefmt", "log_format", "log_level", "logging_config", "show_config", "show_config_json"}
)
_RANK = {"Application": 0, "IdleCuller": 1}

# Upstream's log_level takes logging's numbers or names; idle-cull's --log-level the names.
_LOG_LEVELS = {10: "debug", 20: "info", 30: "warning", 40: "error"}
_LOG_LEVEL_NAMES = {
    "DEBUG": "debug",
    "INFO": "info",
    "WARN": "warning",
    "WARNING": "warning",
    "ERROR": "error",
}

# upstream's --generate-config writes the default hook as its repr, which is not Python
# (upstream itself cannot load that line uncommented): read exactly that as the default.
_ARBITER_REPR = re.compile(
    r"^(\s*c\.IdleCuller\.cull_arbiter_hook\s*=\s*)"
    r"<function default_cull_arbiter at 0x[0-9a-fA-F]+>(?=\s*(#.*)?$)",
    re.M,
)


@dataclass(frozen=True)
class UpstreamNote:
    """One log line about a setting that is read but not used (or used from elsewhere)."""

    level: int  # logging.INFO for upstream's default value, logging.WARNING otherwise
    message: str
    line: int = 0  # the setting's line in the file, to log the notes in file order


@dataclass(frozen=True)
class UpstreamConfig:
    """What an upstream file sets: option values by long name, and notes to log."""

    values: dict[str, object]
    notes: tuple[UpstreamNote, ...] = ()


@dataclass(frozen=True)
class _Assignment:
    where: str
    line: int
    written: str  # c.IdleCuller.timeout, as the file writes it
    name: str
    rank: int
    value: object


def read_upstream_config(text: str, source: str) -> UpstreamConfig:
    """The idle-cull option values an upstream config file sets, and notes to log.

    ``source`` names the file in messages (``idle_culler_config.py:3: ...``). Raises
    ``ConfigError`` for anything that is not a setting read as a value. A setting
    assigned twice takes the later value, and c.IdleCuller wins over c.Application, as
    when upstream runs the file; the one not used gets a note.
    """
    tree = _parse(_ARBITER_REPR.sub(rf"\1{_DEFAULT_ARBITER!r}", text), source)
    values: dict[str, object] = {}
    chosen: dict[str, _Assignment] = {}
    notes: list[UpstreamNote] = []
    for statement in tree.body:
        assignment = _assignment(statement, source)
        if assignment is None:
            continue
        setting = UPSTREAM_SETTINGS[assignment.name]
        if setting.option is None:
            notes.append(_ignored(assignment, setting))
        elif assignment.name == "url" and assignment.value is None:
            notes.append(
                _note(assignment, "None is upstream's default: JUPYTERHUB_API_URL decides")
            )
        else:
            value = _checked(assignment, setting.kind)
            earlier = chosen.get(setting.option)
            if earlier is not None and earlier.rank > assignment.rank:
                notes.append(_overridden(assignment, earlier))
                continue
            if earlier is not None:
                notes.append(_overridden(earlier, assignment))
            chosen[setting.option] = assignment
            values[setting.option] = value
    return UpstreamConfig(values, tuple(sorted(notes, key=lambda note: note.line)))


def _parse(text: str, source: str) -> ast.Module:
    """The file's syntax tree, after bounding each statement's length; never a traceback."""
    _bound_statements(text, source)
    try:
        return ast.parse(text, filename=source)
    except SyntaxError as error:
        where = f"{source}:{error.lineno}" if error.lineno else source
        raise ConfigError(f"{where}: not valid Python ({error.msg})") from None
    except (RecursionError, MemoryError, ValueError) as error:  # hostile depth, NUL bytes
        reason = str(error) or type(error).__name__
        raise ConfigError(f"{source}: cannot be read as a config file ({reason})") from None


def _bound_statements(text: str, source: str) -> None:
    """Refuse a statement of more than ``MAX_STATEMENT_TOKENS`` tokens before parsing it.

    ``tokenize`` is a flat loop, so this costs time linear in the (capped) file size and
    no recursion; invalid syntax is left for ``ast.parse`` to report with its line.
    """
    count, start = 0, 1
    skipped = {tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT}
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                count = 0
            elif token.type not in skipped:
                start = token.start[0] if count == 0 else start
                count += 1
                if count > MAX_STATEMENT_TOKENS:
                    raise ConfigError(
                        f"{source}:{start}: a statement of more than {MAX_STATEMENT_TOKENS} "
                        "tokens is not a setting; write c.IdleCuller.<name> = <value>"
                    )
    except (tokenize.TokenError, SyntaxError):
        return


def _assignment(statement: ast.stmt, source: str) -> _Assignment | None:
    """One statement's setting; ``None`` for the lines that set nothing."""
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
    section, name = _target(statement.targets[0], where)
    written = f"c.{section}.{name}"
    try:
        value = literal_value(statement.value)
    except NotALiteral as error:
        setting = UPSTREAM_SETTINGS[name]
        if setting.option is None and setting.instead:  # a hook: say what replaces it
            raise ConfigError(f"{where}: {written} is not supported: {setting.instead}") from None
        raise ConfigError(
            f"{where}: {written} must be written as a value (idle-cull reads this file "
            f"without running it): {error.fix}"
        ) from None
    return _Assignment(where, statement.lineno, written, name, _RANK[section], value)


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


def _target(target: ast.expr, where: str) -> tuple[str, str]:
    """``("IdleCuller", "timeout")`` from ``c.IdleCuller.timeout``; others are refused."""
    if not (
        isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Attribute)
        and isinstance(target.value.value, ast.Name)
        and target.value.value.id == "c"
    ):
        raise ConfigError(
            f"{where}: only c.IdleCuller.<name> = <value> lines are allowed "
            "(idle-cull reads this file without running it)"
        )
    section, name = target.value.attr, target.attr
    if section == "IdleCuller" and name in UPSTREAM_SETTINGS:
        return section, name
    if section == "Application" and name in APPLICATION_TRAITS:
        return section, name
    if name in UPSTREAM_SETTINGS:
        raise ConfigError(
            f"{where}: c.{section}.{name} is not an idle culler setting; write c.IdleCuller.{name}"
        )
    if section in _RANK:
        near = difflib.get_close_matches(name, list(UPSTREAM_SETTINGS), n=1)
        hint = f"; did you mean c.IdleCuller.{near[0]}?" if near else ""
        raise ConfigError(f"{where}: c.{section}.{name} is not an upstream setting{hint}")
    raise ConfigError(
        f"{where}: c.{section}.{name} is not an idle culler setting; "
        "only c.IdleCuller.<name> settings are read"
    )


def _note(assignment: _Assignment, reason: str, level: int = logging.INFO) -> UpstreamNote:
    message = f"{assignment.where}: {assignment.written} ignored: {reason}"
    return UpstreamNote(level, message, assignment.line)


def _ignored(assignment: _Assignment, setting: UpstreamSetting) -> UpstreamNote:
    """The note for a trait that means nothing here, or the refusal of a changed one."""
    if assignment.value == setting.default:
        return _note(assignment, setting.ignored)
    if setting.only_default:
        raise ConfigError(
            f"{assignment.where}: {assignment.written} is not supported: {setting.instead}"
        )
    return _note(assignment, f"{setting.ignored}; its value is not used", level=logging.WARNING)


def _overridden(loser: _Assignment, winner: _Assignment) -> UpstreamNote:
    return UpstreamNote(
        logging.INFO,
        f"{loser.where}: {loser.written} ignored: {winner.written} on line {winner.line} "
        "sets it, as when upstream runs the file",
        loser.line,
    )


def _checked(assignment: _Assignment, kind: str) -> object:
    """The value if upstream's trait type would take it (bool is not an int here)."""
    value, written = assignment.value, f"{assignment.where}: {assignment.written}"
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "log_level":
        return _log_level(value, written)
    if kind == "int" and isinstance(value, float) and value.is_integer():
        raise ConfigError(f"{written} must be a whole number, got {value!r}: write {int(value)}")
    wanted = {"int": "a whole number", "bool": "True or False", "str": "a quoted string"}[kind]
    raise ConfigError(f"{written} must be {wanted}, got {value!r}")


def _log_level(value: object, written: str) -> str:
    level = _LOG_LEVELS.get(value) if isinstance(value, int) else None
    if isinstance(value, str):
        level = _LOG_LEVEL_NAMES.get(value.upper())
    if level is not None:
        return level
    fix = (
        "write 'ERROR', the least verbose level here"
        if value in (50, "CRITICAL")
        else ("write one of them")
    )
    raise ConfigError(
        f"{written} {value!r} is not one of DEBUG, INFO, WARNING, ERROR (or 10, 20, 30, 40): {fix}"
    )
