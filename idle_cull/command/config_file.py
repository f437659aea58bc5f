"""Config files: idle-cull's own TOML, or upstream's ``idle_culler_config.py``.

Both become defaults for the command's options (click's ``default_map``), so precedence
is click's: the command line, then the environment, then the file, then the defaults.
Every key is the long name of an option in ``options.OPTIONS`` and every value goes
through that option's own click type, so a file is validated exactly as the command line
is; ``--generate-config`` renders the same table. Nothing here lists the options again.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from idle_cull import __version__
from idle_cull.command.options import ENV_PREFIX, OPTIONS, Option, nearest
from idle_cull.command.upstream_config import UpstreamNote, read_upstream_config
from idle_cull.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the backport, a dependency only before Python 3.11
    import tomli as tomllib

__all__ = [
    "CONFIG_FILE_FLAGS",
    "MAX_CONFIG_BYTES",
    "MAX_UPSTREAM_CONFIG_BYTES",
    "UPSTREAM_DEFAULT_FILE",
    "ConfigFile",
    "ConfigFileError",
    "ConfigSource",
    "config_file_options",
    "defaults_from",
    "file_options",
    "generate_config",
    "load_config_file",
    "read_config_file",
]

F = TypeVar("F", bound=Callable[..., Any])

UPSTREAM_DEFAULT_FILE = "idle_culler_config.py"
# The two options declared here rather than in ``options.OPTIONS``: they say where the
# settings come from, and are not settings themselves (a file cannot set them).
CONFIG_FILE_FLAGS = ("--config", "--generate-config")
MAX_CONFIG_BYTES = 1 << 20  # a config file of a megabyte is a mistake, not a rule set
# CPython's parser takes up to ~500 bytes of memory per byte of hostile source (a 1 MB
# list literal: 490 MB, 2.3 s); upstream's generated file is 7.5 KB.
MAX_UPSTREAM_CONFIG_BYTES = 64 << 10


@dataclass(frozen=True)
class ConfigSource:
    """Which file set which options, for the start-of-pass log line."""

    path: Path
    kind: str  # "toml" (idle-cull's own) or "upstream" (idle_culler_config.py)
    keys: tuple[str, ...]
    implicit: bool = False  # upstream's default file, found in the working directory
    notes: tuple[UpstreamNote, ...] = ()  # settings read but not used, one line each

    def describe(self) -> str:
        what = "idle-cull TOML" if self.kind == "toml" else "upstream idle_culler_config.py"
        if self.implicit:
            what += ", read because it is in the working directory as upstream does"
        count = f"{len(self.keys)} setting" + ("" if len(self.keys) == 1 else "s")
        return f"read {count} from {self.path} ({what}): {', '.join(self.keys) or 'none'}"

    def log_lines(self) -> list[tuple[int, str]]:
        """``(level, line)`` to log at the start of a pass: what was read, then a line for
        each setting read but not used."""
        return [(logging.INFO, self.describe())] + [(n.level, n.message) for n in self.notes]


@dataclass(frozen=True)
class ConfigFile:
    """A config file's kind, its values by long option name, and notes to log."""

    kind: str
    values: dict[str, object]
    notes: tuple[UpstreamNote, ...] = ()


def load_config_file(path: Path) -> ConfigFile:
    """Read a config file; raises ``ConfigError``.

    ``.toml`` is idle-cull's format and ``.py`` upstream's; any other name is judged by
    content (upstream's files assign to ``c.IdleCuller``).
    """
    text = _read_text(path)
    if path.suffix == ".py" or (path.suffix != ".toml" and _looks_upstream(text)):
        if len(text.encode("utf-8")) > MAX_UPSTREAM_CONFIG_BYTES:
            raise ConfigError(
                f"config file {path} is larger than {MAX_UPSTREAM_CONFIG_BYTES} bytes, "
                "too large for an upstream idle_culler_config.py"
            )
        upstream = read_upstream_config(text, str(path))
        return ConfigFile("upstream", upstream.values, upstream.notes)
    return ConfigFile("toml", read_toml(text, str(path)))


def read_config_file(path: Path) -> tuple[str, dict[str, object]]:
    """The file's kind and its values by long option name; raises ``ConfigError``."""
    loaded = load_config_file(path)
    return loaded.kind, loaded.values


def _looks_upstream(text: str) -> bool:
    return "get_config()" in text or re.search(r"^\s*c\.\w+\.\w+\s*=", text, re.M) is not None


def _read_text(path: Path) -> str:
    try:
        if not path.is_file():
            raise ConfigError(
                f"config file {path} "
                + ("is not a regular file" if path.exists() else "does not exist")
            )
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES} bytes")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise ConfigError(f"cannot read config file {path}: {reason}") from None


def read_toml(text: str, source: str) -> dict[str, object]:
    """Top-level keys of an idle-cull TOML file (their values are checked by the options).

    The text is already capped (``MAX_CONFIG_BYTES``); the TOML parser recurses once per
    nesting level, so a hostile depth ends in ``RecursionError``, caught here.
    """
    try:
        return dict(tomllib.loads(text))
    except tomllib.TOMLDecodeError as error:
        hint = _toml_hint(text, str(error))
        message = f"{source}:{hint}" if hint else f"{source}: not valid TOML: {error}"
        raise ConfigError(message) from None
    except (RecursionError, MemoryError):
        raise ConfigError(
            f"{source}: not a config file: values nested too deeply to read "
            "(idle-cull's settings are single values, lists and one-level tables)"
        ) from None


_BARE_VALUE = re.compile(
    r"^\s*([A-Za-z0-9_-]+)\s*=\s*([A-Za-z0-9_.:+-]*[A-Za-z][A-Za-z0-9_.:+-]*)\s*(#.*)?$"
)


def _toml_hint(text: str, error: str) -> str | None:
    """``N: write timeout = "10m" (...)`` (N the line) for an unquoted word, the commonest TOML
    mistake in a config file; ``None`` when the error is something else."""
    line_number = re.search(r"at line (\d+)", error)
    if line_number is None:
        return None
    lines = text.splitlines()
    number = int(line_number.group(1))
    match = _BARE_VALUE.match(lines[number - 1]) if 0 < number <= len(lines) else None
    if match is None:
        return None
    key, word = match.group(1), match.group(2)
    if word in ("True", "False"):
        fixed, why = word.lower(), "TOML's true and false are lowercase"
    elif re.fullmatch(r"[0-9.]+\s*[A-Za-z]+", word):
        fixed, why = json.dumps(word), "durations are strings in TOML"
    else:
        fixed, why = json.dumps(word), "text is quoted in TOML"
    return f"{number}: write {key} = {fixed} ({why})"


# -- binding to the command's options ---------------------------------------------------


def file_options(command: click.Command) -> dict[str, click.Option]:
    """The options a file may set, by long name (``exclude-user``): every option of the
    table, as the command declares it to click."""
    params = {param.name: param for param in command.params if isinstance(param, click.Option)}
    return {option.name: params[option.dest] for option in OPTIONS}


def defaults_from(
    ctx: click.Context, values: Mapping[str, object], source: str
) -> dict[str, object]:
    """``default_map`` entries for ``values``, each checked by its option's type.

    Raises ``ConfigError`` naming the file and key; an unknown key names the nearest
    known one, since a silently ignored typo would cull what the operator meant to keep.
    """
    options = file_options(ctx.command)
    defaults: dict[str, object] = {}
    for key, value in values.items():
        option = options.get(key)
        if option is None or option.name is None:
            near = nearest(key.replace("_", "-"), options)
            hint = f"; did you mean {near!r}?" if near else ""
            raise ConfigError(f"{source}: unknown setting {key!r}{hint}")
        raw = _option_value(option, key, value, source)
        try:
            defaults[option.name] = option.type_cast_value(ctx, raw)
        except click.BadParameter as error:
            raise ConfigError(f"{source}: {key} = {_show(value)}: {error.message}") from None
    return defaults


def _option_value(option: click.Option, key: str, value: object, source: str) -> object:
    """The file's value in the shape the option takes, without guessing at types."""
    if option.multiple:
        if isinstance(value, dict) and "=" in option.type.name:
            return [f"{name}={_scalar(option, key, v, source)}" for name, v in value.items()]
        if not isinstance(value, list):
            example = '{ name = "2h" }' if "=" in option.type.name else '["a", "b"]'
            raise ConfigError(f"{source}: {key} takes a list (e.g. {key} = {example})")
        return [_scalar(option, key, item, source) for item in value]
    return _scalar(option, key, value, source)


def _scalar(option: click.Option, key: str, value: object, source: str) -> object:
    is_bool = isinstance(option.type, click.types.BoolParamType)
    if isinstance(value, bool) and not is_bool:
        raise ConfigError(f"{source}: {key} = {_show(value)}: not a true/false setting")
    if isinstance(value, float) and isinstance(option.type, click.types.IntParamType):
        if not value.is_integer():
            raise ConfigError(f"{source}: {key} = {value!r}: must be a whole number")
        return int(value)
    if not isinstance(value, (str, int, float, bool)):
        raise ConfigError(f"{source}: {key} = {_show(value)}: expected a single value")
    return value


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, default=str)


# -- the --config and --generate-config options -----------------------------------------


def _load_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> Any:
    """Eager: read the file before the other options, so it becomes their defaults."""
    if ctx.resilient_parsing:
        return None
    implicit = value is None
    path = Path(UPSTREAM_DEFAULT_FILE) if value is None else value
    if implicit and not path.is_file():
        return None
    try:
        loaded = load_config_file(path)
        defaults = defaults_from(ctx, loaded.values, str(path))
    except ConfigError as error:
        raise ConfigFileError(str(error)) from None
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return ConfigSource(path, loaded.kind, tuple(loaded.values), implicit, loaded.notes)


class ConfigFileError(click.ClickException):
    """A config file problem: one ``Error:`` line and exit 2, as for other usage errors."""

    exit_code = 2


def _print_config(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(generate_config(ctx.command), nl=False)
        ctx.exit(0)


def config_file_options(command: F) -> F:
    """``--config FILE`` and ``--generate-config``, added to the command last."""
    config, generate = CONFIG_FILE_FLAGS
    command = click.option(
        config,
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        envvar=f"{ENV_PREFIX}_CONFIG",
        show_envvar=True,
        is_eager=True,
        callback=_load_config,
        help="Read settings from this file: idle-cull's TOML (see --generate-config) or "
        "upstream's idle_culler_config.py. The command line and environment override it. "
        f"Without --config, ./{UPSTREAM_DEFAULT_FILE} is read if it exists, as upstream does.",
    )(command)
    return click.option(
        generate,
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_print_config,
        help="Print a config file with every setting, its default and its help, and exit.",
    )(command)


def generate_config(command: click.Command) -> str:
    """A complete TOML config file: every option of the table, commented out at its default."""
    lines = [
        f"# idle-cull {__version__} configuration (TOML); use it with: idle-cull --config FILE",
        "# Every setting is shown commented out at its default: uncomment what you change.",
        f"# The command line and the environment ({ENV_PREFIX}_<OPTION>) override this file.",
        "# The API token never goes here: use JUPYTERHUB_API_TOKEN or api-token-file.",
        "# Nor the proxy's: use CONFIGPROXY_AUTH_TOKEN or proxy-auth-token-file.",
    ]
    params = file_options(command)
    for option in OPTIONS:
        lines.append("")
        lines.extend(_comment(f"{option.name}: {option.help}"))
        lines.append(f"# environment: {', '.join(option.envvars)}")
        lines.append(_default_line(option, params[option.name]))
    return "\n".join(lines) + "\n"


def _comment(text: str) -> list[str]:
    return ["# " + line for line in textwrap.wrap(text, width=86)]


def _default_line(option: Option, param: click.Option) -> str:
    key = option.name
    if option.multiple:
        if "=" in param.type.name:
            return f'# {key} = {{}}  # e.g. {key} = {{ gpu = "2h" }}'
        return f"# {key} = []"
    if option.default is None:
        return f"# {key} =   # not set by default ({param.type.name})"
    default = option.default
    value = param.type.convert(default, param, None) if isinstance(default, str) else default
    return f"# {key} = {_toml_value(value)}"


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))
