"""The README and the shipped files agree with the code: the option table with the
command's options, the exit-status table with ``ExitStatus``, every version with
``idle_cull.__version__``. Docs that drift fail here, not in an operator's cron job."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from idle_cull import __version__
from idle_cull.exits import ExitStatus
from idle_cull.hub import PROBE_TIMEOUT
from idle_cull.limiter import LimiterTuning
from idle_cull.options import OPTIONS, Option

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BY_FLAG = {option.flag: option for option in OPTIONS}


def section(title: str) -> str:
    """The README's text under ``## title``, up to the next heading of that level."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def table_rows(text: str) -> list[list[str]]:
    """The cells of the first Markdown table in ``text``, header and rule left out."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


OPTION_ROWS = table_rows(section("Options"))


def flags_in(cell: str) -> list[str]:
    return re.findall(r"`(--[a-z-]+)`", cell)


def test_the_option_table_documents_exactly_the_commands_options() -> None:
    documented = [flag for row in OPTION_ROWS for flag in flags_in(row[0])]
    assert len(documented) == len(set(documented)), "an option is documented twice"
    assert sorted(documented) == sorted(BY_FLAG)


@pytest.mark.parametrize("option", list(OPTIONS), ids=lambda o: o.name)
def test_the_option_table_gives_each_options_env_var(option: Option) -> None:
    row = next(row for row in OPTION_ROWS if option.flag in flags_in(row[0]))
    assert row[1].strip("`") == (option.envvar or "")


def single_option_rows() -> list[tuple[Option, str]]:
    rows = [(flags_in(row[0]), row[2]) for row in OPTION_ROWS]
    return [(BY_FLAG[flags[0]], default) for flags, default in rows if len(flags) == 1 and default]


@pytest.mark.parametrize(
    ("option", "documented"), single_option_rows(), ids=lambda v: getattr(v, "name", v)
)
def test_the_option_table_gives_each_options_default(option: Option, documented: str) -> None:
    if option.boolean:
        assert documented == str(option.default).lower()
    else:
        assert re.match(r"`([^`]*)`", documented), documented
        assert documented.split("`")[1] == str(option.default)


def test_the_exit_status_table_matches_the_exit_statuses() -> None:
    rows = table_rows(section("Exit status"))
    documented = {int(status): meaning.replace("`", "") for status, meaning in rows}
    assert sorted(documented) == sorted(int(status) for status in ExitStatus)
    for status in ExitStatus:
        assert documented[int(status)].startswith(status.meaning), status.name


def test_the_development_section_names_every_module() -> None:
    text = section("Development")
    modules = sorted(path.name for path in (ROOT / "idle_cull").glob("*.py"))
    assert [name for name in modules if f"`{name}`" not in text] == []


def test_the_package_metadata_has_the_code_version() -> None:
    assert version("idle-cull") == __version__


def test_the_readme_and_image_files_carry_the_code_version() -> None:
    texts = {
        name: (ROOT / name).read_text(encoding="utf-8") for name in ("README.md", "Containerfile")
    }
    tags = {name: re.findall(r"/idle-cull:([\w.]+)", text) for name, text in texts.items()}
    assert all(tags.values()), tags
    assert {tag for found in tags.values() for tag in found} == {__version__}
    assert f'"generator": {{"name": "idle-cull", "version": "{__version__}"}}' in README


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


def test_the_readme_gives_the_limiters_thresholds() -> None:
    """The README's "Kind to the hub" quotes the limiter's constants; a retuning must update it."""
    tuning = LimiterTuning()
    section = README.split("### Kind to the hub", 1)[1].split("\n### ", 1)[0]
    assert f"every {tuning.probe_every * 1000:g} ms while actions are in flight" in section
    assert f"(under {tuning.quick * 1000:g} ms)" in section
    assert f"(over {tuning.slow * 1000:g} ms, or no" in section
    assert f"{PROBE_TIMEOUT:g} s or `--request-timeout`" in section
    assert {0.75: "by a quarter", 0.5: "by half"}[tuning.decrease] in section.replace("\n  ", " ")
