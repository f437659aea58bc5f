"""The README and the shipped files agree with the code: every version written in them
is ``idle_cull.__version__``. Docs that drift fail here, not in an operator's cron job."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import yaml

from idle_cull import __version__

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_package_metadata_has_the_code_version() -> None:
    assert version("idle-cull") == __version__


def test_the_readme_and_image_files_carry_the_code_version() -> None:
    texts = {name: (ROOT / name).read_text(encoding="utf-8") for name in ("README.md", "Containerfile")}
    tags = {name: re.findall(r"/idle-cull:([\w.]+)", text) for name, text in texts.items()}
    assert all(tags.values()), tags
    assert {tag for found in tags.values() for tag in found} == {__version__}
    assert f'"generator": {{"name": "idle-cull", "version": "{__version__}"}}' in README


def test_the_cronjob_runs_the_image_of_the_code_version() -> None:
    cronjob = next(
        doc
        for doc in yaml.safe_load_all((ROOT / "cron" / "kubernetes" / "cronjob.yaml").read_text(encoding="utf-8"))
        if doc and doc.get("kind") == "CronJob"
    )
    containers = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert [c["image"].rpartition(":")[2] for c in containers] == [__version__]
