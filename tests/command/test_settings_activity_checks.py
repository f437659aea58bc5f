"""The checks of ``--activity-source`` and its options when ``Settings`` is built
directly (the library's way in, where click's choices do not stand guard): each wrong
value is one ``ConfigError`` (exit 2) naming the option and what it must be."""

from __future__ import annotations

import pytest

from idle_cull.command.settings import ActivitySource
from idle_cull.errors import ConfigError
from tests.support.settings import settings


@pytest.mark.parametrize(
    ("activity", "message"),
    [
        pytest.param(
            ActivitySource(activity_source="kernels"),
            "--activity-source must be hub or server, got 'kernels'",
            id="unknown-source",
        ),
        pytest.param(
            ActivitySource(no_sessions="busy"),
            "--no-sessions must be hub or idle, got 'busy'",
            id="unknown-no-sessions",
        ),
        pytest.param(
            ActivitySource(cpu_threshold=0.0),
            "--cpu-threshold must be a positive percentage, got 0.0",
            id="cpu-threshold-zero",
        ),
        pytest.param(
            ActivitySource(cpu_window=61.0),
            "--cpu-window must be more than 0 and at most 60 seconds",
            id="cpu-window-too-long",
        ),
    ],
)
def test_a_wrong_activity_option_is_one_config_error(
    activity: ActivitySource, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(activity=activity)
    assert str(caught.value) == message


def test_the_proxy_url_of_the_server_source_is_checked() -> None:
    with pytest.raises(ConfigError, match="--proxy-url"):
        settings(activity=ActivitySource(activity_source="server"), proxy_url="ftp://proxy")


def test_a_usable_proxy_url_is_accepted_for_the_server_source() -> None:
    built = settings(
        activity=ActivitySource(activity_source="server"), proxy_url="http://proxy-public"
    )
    assert built.activity.server
