"""The README, docs/ and the shipped files agree with the code.

The reference pages (options, exit statuses, metrics, report schema) are generated from
the code when the docs are built, so they cannot drift; what is checked here is the prose
that quotes the code: the one list of scopes, the limiter's thresholds, the module table,
every version, the README's commands and links. Docs that drift fail here, not in an
operator's cron job.
"""

from __future__ import annotations

import re
import textwrap
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml

from idle_cull import __version__
from idle_cull.command.options import OPTIONS
from idle_cull.hub.client import RESPONSIVENESS_TIMEOUT
from idle_cull.hub.limiter import LimiterTuning
from idle_cull.output.render import report_json_schema
from idle_cull.preflight import needed_scopes
from idle_cull.rules.policy import CullLimits

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text(encoding="utf-8")


def page(path: str) -> str:
    return (DOCS / path).read_text(encoding="utf-8")


def table_rows(text: str) -> list[list[str]]:
    """The cells of the first Markdown table in ``text``, header and rule left out."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    cells = (re.split(r"(?<!\\)\|", line.strip().strip("|")) for line in lines[2:])
    return [[cell.strip() for cell in row] for row in cells]


def section(text: str, heading: str) -> str:
    """``text`` under ``heading`` (a whole heading line), up to the next heading of its level."""
    level = heading.split(" ", 1)[0]
    start = text.index(f"\n{heading}\n")
    end = text.find(f"\n{level} ", start + 1)
    return text[start : end if end != -1 else len(text)]


# ---------------------------------------------------------------------------------------
# The one list of scopes (docs/how-to/role-and-scopes.md)

SCOPE_ROWS = table_rows(section(page("how-to/role-and-scopes.md"), "## The scopes"))
WHEN: dict[
    str, dict[str, Any]
] = {  # the "needed" column, as the CullLimits and --probe-kernels that need the scope
    "always": {},
    "with `--cull-users`": {"cull_users": True},
    "with `--exclude-group` or `--group-timeout`": {"exclude_groups": ("staff",)},
    "with `--probe-kernels` or `--postpone-limit`": {"probe_kernels": True},
}


def scopes_needed(when: dict[str, Any]) -> set[str]:
    settings = dict(when)
    probe = settings.pop("probe_kernels", False)
    return {need.scope for need in needed_scopes(CullLimits(**settings), probe_kernels=probe)}


@pytest.mark.parametrize("when", list(WHEN), ids=list(WHEN))
def test_the_scope_list_gives_what_the_preflight_checks(when: str) -> None:
    documented = {row[0].strip("`") for row in SCOPE_ROWS if row[1] in ("always", when) and row[0]}
    assert documented == scopes_needed(WHEN[when])


def test_the_scope_list_is_complete_for_group_timeouts_too() -> None:
    group_rules = {row[0].strip("`") for row in SCOPE_ROWS if "--group-timeout" in row[1]}
    limits = CullLimits(group_timeouts=(("staff", 3600.0),))
    assert {need.scope for need in needed_scopes(limits)} - scopes_needed({}) <= group_rules


def test_the_scope_list_names_what_allow_unchecked_groups_drops() -> None:
    """Group rules need read:groups:name unless --allow-unchecked-groups (issue 23.1)."""
    dropped = {row[0].strip("`") for row in SCOPE_ROWS if "`--allow-unchecked-groups`" in row[2]}
    limits = CullLimits(exclude_groups=("staff",))
    unchecked = needed_scopes(limits, allow_unchecked_groups=True)
    assert dropped == scopes_needed(WHEN["with `--exclude-group` or `--group-timeout`"]) - {
        need.scope for need in unchecked
    }
    assert dropped == {"read:groups:name"}


def test_every_other_needed_column_says_optional() -> None:
    assert all(row[1] in WHEN or row[1].startswith("optional") for row in SCOPE_ROWS)


def test_the_role_snippet_grants_the_scopes_every_pass_needs() -> None:
    text = page("how-to/role-and-scopes.md")
    block = re.search(r"```python\n(.*?)```", text, re.S)
    assert block is not None
    granted = re.findall(r'^\s+"([a-z:]+)",', block.group(1), re.M)
    assert set(granted) == scopes_needed({})


def test_the_zero_to_jupyterhub_role_grants_the_scopes_every_pass_needs() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", page("how-to/kubernetes.md"), re.S)
    values = next(yaml.safe_load(textwrap.dedent(b)) for b in blocks if "loadRoles" in b)
    assert set(values["hub"]["loadRoles"]["idle-cull"]["scopes"]) == scopes_needed({})


# ---------------------------------------------------------------------------------------
# Prose that quotes the code


def test_the_limiters_thresholds_are_the_codes() -> None:
    """ "Kind to the hub" quotes the limiter's constants; a retuning must update it."""
    tuning = LimiterTuning()
    text = page("explanation/kind-to-the-hub.md").replace("\n  ", " ")
    assert f"every {tuning.probe_every * 1000:g} ms while actions are in flight" in text
    assert f"(under {tuning.quick * 1000:g} ms)" in text
    assert f"(over {tuning.slow * 1000:g} ms, or no" in text
    assert f"{RESPONSIVENESS_TIMEOUT:g} s or `--request-timeout`" in text
    assert {0.75: "by a quarter", 0.5: "by half"}[tuning.decrease] in text


def test_contributing_names_every_module() -> None:
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    package = ROOT / "idle_cull"
    modules = sorted(
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if path.name != "__init__.py" or path.parent != package
    )
    modules = [name for name in modules if not name.endswith("/__init__.py")]
    modules += ["__init__.py"]
    assert [name for name in modules if f"`{name}`" not in text] == []


def test_every_report_field_has_a_description_for_the_reference_page() -> None:
    """The report-schema page renders each field's description: a new field needs one."""
    schema = report_json_schema()
    objects = [schema, schema["properties"]["counts"]]
    objects += [schema["$defs"][name] for name in ("entry", "probe", "activity", "upcoming")]
    missing = [
        name for o in objects for name, p in o["properties"].items() if not p.get("description")
    ]
    assert missing == []
    outcome = schema["$defs"]["outcome"]
    assert len(outcome["enumDescriptions"]) == len(outcome["enum"])


# ---------------------------------------------------------------------------------------
# Versions


def test_the_package_metadata_has_the_code_version() -> None:
    assert version("idle-cull") == __version__


def test_the_docs_and_image_files_carry_the_code_version() -> None:
    paths = ("docs/how-to/scheduling.md", "Containerfile")
    texts = {name: (ROOT / name).read_text(encoding="utf-8") for name in paths}
    tags = {name: re.findall(r"/idle-cull:([\w.]+)", text) for name, text in texts.items()}
    assert all(tags.values()), tags
    assert {tag for found in tags.values() for tag in found} == {__version__}
    example = page("how-to/reports-and-metrics.md")
    assert f'"generator": {{"name": "idle-cull", "version": "{__version__}"}}' in example


def test_the_cronjob_runs_the_image_of_the_code_version() -> None:
    cronjob = next(
        doc
        for doc in yaml.safe_load_all(
            (ROOT / "cron" / "kubernetes" / "base" / "cronjob.yaml").read_text(encoding="utf-8")
        )
        if doc and doc.get("kind") == "CronJob"
    )
    containers = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert [c["image"].rpartition(":")[2] for c in containers] == [__version__]


# ---------------------------------------------------------------------------------------
# The README


def test_the_readme_starts_with_the_demo_and_the_test_command() -> None:
    """.ci/run runs "exactly the README's test command"; a newcomer sees both first."""
    commands = re.findall(r"```bash\n(.*?)\n```", README, re.S)
    assert commands[:2] == ["./scripts/demo", "./scripts/test"]
    assert "exec ./scripts/test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def pages_and_readme() -> list[Path]:
    return [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]


@pytest.mark.parametrize("path", pages_and_readme(), ids=lambda p: str(p.relative_to(ROOT)))
def test_reading_the_kept_reasons_shows_a_command_that_prints_them(path: Path) -> None:
    """Issue 23.7: the quickstart said to read the ``kept`` reasons after a command that
    prints none: without --report-kept the text report only counts kept servers."""
    text = path.read_text(encoding="utf-8")
    for mention in re.finditer(r"the `kept` reasons", text):
        nearest = min(
            re.finditer(r"```(?:bash|sh)\n(.*?)```", text, re.S),
            key=lambda block: abs(block.start() - mention.start()),
        )
        assert "--report-kept" in nearest.group(1), nearest.group(1)


@pytest.mark.parametrize("document", ["README.md", "CONTRIBUTING.md"], ids=lambda d: d)
def test_relative_links_point_at_files_that_exist(document: str) -> None:
    """Sphinx checks docs/; these files are outside its build, so they are checked here."""
    text = (ROOT / document).read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text)
    assert targets, "no relative links at all: the pattern is wrong"
    assert [t for t in targets if not (ROOT / t).exists()] == []


# ---------------------------------------------------------------------------------------
# Options the prose names


FOREIGN_FLAGS = {  # flags of other tools, and the placeholders the options page explains
    "--collector.textfile.directory",  # node_exporter
    "--demo",  # scripts/install
    "--failed",  # systemctl
    "--from",  # kubectl create job
    "--from-file",  # kubectl create secret/configmap
    "--hub-release",  # pytest, tests/conftest.py
    "--keep-going",  # sphinx-build
    "--no-deps",  # pip
    "--flag",
    "--no-flag",
    "--flag_name",
}


def flags_named(text: str) -> set[str]:
    """Flags in inline code and on ``idle-cull`` command lines, without their values."""
    commands = re.findall(r"(?:^|\s|bin/)idle-cull (--[^\n]*)", text, re.M)
    spans = re.findall(r"`([^`\n]+)`", text) + commands
    flags = {f for span in spans for f in re.findall(r"(?<![\w-])(--[a-z][\w.-]*)", span)}
    return {flag.rstrip(".") for flag in flags}


def test_every_option_the_docs_name_exists() -> None:
    """A renamed or removed option leaves no page telling operators to use it."""
    from idle_cull.command.cli import cli  # noqa: PLC0415 - only this test needs the command

    known = {opt for param in cli.params for opt in param.opts} | {"--help"}
    known |= {f"--no-{option.name}" for option in OPTIONS if option.boolean}
    pages = [*DOCS.rglob("*.md"), ROOT / "README.md", ROOT / "CONTRIBUTING.md"]
    stale = {
        f"{path.relative_to(ROOT)}: {flag}"
        for path in pages
        for flag in flags_named(path.read_text(encoding="utf-8"))
        if flag not in known | FOREIGN_FLAGS
    }
    assert sorted(stale) == []


OPTION_DEFAULT_TABLES = [
    "explanation/safety-rails.md",
    "explanation/busy-kernels.md",
    "explanation/what-counts-as-activity.md",
]
WORDS = {"off": (None, False, "0", 0, ()), "none": (None,), "on": (True,)}


def default_rows() -> list[tuple[str, str, str]]:
    rows = []
    for path in OPTION_DEFAULT_TABLES:
        text = page(path)
        table = text[text.index("| option | default |") :]
        for cells in table_rows(table):
            rows.append((path, re.findall(r"`(--[a-z-]+)", cells[0])[0], cells[1]))
    return rows


@pytest.mark.parametrize(("path", "flag", "documented"), default_rows())
def test_the_explanations_give_each_options_default(path: str, flag: str, documented: str) -> None:
    """The rails and the busy-kernel options are explained with their defaults in a table."""
    option = next(option for option in OPTIONS if option.flag == flag)
    if documented in WORDS:
        assert option.default in WORDS[documented]
    else:
        assert documented == f"`{option.default}`"
