"""The layers of ``pyproject.toml``'s import contracts, as a fresh interpreter sees them.

``lint-imports`` checks the import graph statically; this checks what really gets loaded,
which is what start-up time and the hub client's independence from the command depend on.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def loaded_after(statement: str) -> set[str]:
    """The top-level module names loaded after ``statement`` in a new interpreter."""
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    return {name.partition(".")[0] for name in done.stdout.split()} | set(done.stdout.split())


@pytest.mark.parametrize(
    ("statement", "absent"),
    [
        pytest.param("import idle_cull.hub.client", {"click", "idle_cull.rules", "idle_cull.command"}, id="hub-client"),
        pytest.param("import idle_cull.rules.policy", {"click", "requests", "urllib3"}, id="rules"),
        pytest.param("import idle_cull.output.render", {"click", "idle_cull.hub"}, id="output"),
    ],
)  # fmt: skip
def test_a_layer_loads_nothing_above_it(statement: str, absent: set[str]) -> None:
    assert loaded_after(statement) & absent == set()
