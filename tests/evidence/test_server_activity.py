"""``server_activity``: parsing every answer, the verdict, and the probe against ``responses``.

The probe never really sleeps: it gets a ``sleep`` that records the pauses, and a clock
that those pauses advance, so the CPU window is measured without waiting for it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from idle_cull.durations import format_duration
from idle_cull.evidence.base import Asks, Target
from idle_cull.evidence.probe_tokens import ProbeTarget
from idle_cull.evidence.proxy_routes import through_proxy
from idle_cull.evidence.server_activity import (
    MAX_ANSWER,
    AnswerRefused,
    ServerActivityProbe,
    ServerActivitySource,
    read_cpu_percent,
    read_kernel_list,
    read_terminal_list,
)
from idle_cull.rules.evidence import Finding
from idle_cull.rules.server_activity import (
    ActivitySettings,
    Cpu,
    KernelSeen,
    NoSessions,
    ServerActivity,
    TerminalSeen,
    judge_activity,
)

PROXY = "http://proxy.test:8000"
BASE = f"{PROXY}/user/ann/"
TOKEN = "pr0be-T0KEN-9f8e7d6c5b4a"
NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)
STARTED = NOW - timedelta(hours=3)
HOUR = 3600.0
DEFAULTS = ActivitySettings()


def at(url: str | None) -> ProbeTarget:
    """Ann's default server at ``url``, as the probe is asked about it."""
    return ProbeTarget("ann", "", url, frozenset({""}))


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def kernel_model(
    state: str = "idle", last: float = 600, name: str = "python3"
) -> dict[str, object]:
    return {
        "id": "k1",
        "name": name,
        "last_activity": stamp(ago(last)),
        "execution_state": state,
        "connections": 1,
    }


def terminal_model(name: str = "1", last: float = 600) -> dict[str, str]:
    return {"name": name, "last_activity": stamp(ago(last))}


# --- parsing --------------------------------------------------------------------------


def test_a_kernel_list_is_read_with_its_state_and_last_message() -> None:
    body = json.dumps([kernel_model("busy", 30), kernel_model("idle", 90, "ir")]).encode()
    assert read_kernel_list(body) == (
        KernelSeen("python3", ago(30), busy=True, connections=1),
        KernelSeen("ir", ago(90), busy=False, connections=1),
    )


def test_a_terminal_list_is_read() -> None:
    body = json.dumps([terminal_model("2", 40)]).encode()
    assert read_terminal_list(body) == (TerminalSeen("2", ago(40)),)


NESTED = b"[" * 40_000 + b"]" * 40_000


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b"<html>login</html>", "not JSON", id="html"),
        pytest.param(NESTED, "not JSON", id="nested-40k-deep"),
        pytest.param(b'{"kernels": []}', "not a list", id="object"),
        pytest.param(b"[1, 2]", "no execution_state", id="numbers"),
        pytest.param(b'[{"execution_state": 7}]', "no execution_state", id="state-not-text"),
        pytest.param(
            b'[{"execution_state": "idle"}]', "no readable last_activity", id="no-timestamp"
        ),
        pytest.param(
            b'[{"execution_state": "idle", "last_activity": "yesterday"}]',
            "no readable last_activity",
            id="bad-timestamp",
        ),
        pytest.param(
            b'[{"execution_state": "idle", "last_activity": [[["2026"]]]}]',
            "no readable last_activity",
            id="nested-timestamp",
        ),
    ],
)
def test_an_answer_that_is_not_a_kernel_list_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(AnswerRefused, match=reason):
        read_kernel_list(body)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[{}]", id="no-name"),
        pytest.param(b'[{"name": 1, "last_activity": "2026-11-26T10:00:00Z"}]', id="name-number"),
        pytest.param(b'[{"name": "1"}]', id="no-timestamp"),
        pytest.param(b'{"name": "1"}', id="object"),
        pytest.param(NESTED, id="nested"),
    ],
)
def test_an_answer_that_is_not_a_terminal_list_is_refused(body: bytes) -> None:
    with pytest.raises(AnswerRefused):
        read_terminal_list(body)


def test_a_huge_kernel_list_is_read_without_trouble_up_to_the_cap() -> None:
    one = json.dumps(kernel_model()).encode()
    body = b"[" + b",".join([one] * (MAX_ANSWER // (len(one) + 1) - 1)) + b"]"
    assert len(body) <= MAX_ANSWER
    assert len(read_kernel_list(body)) > 5000


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b'{"rss": 1, "cpu_percent": 180.5}', 180.5, id="tracked"),
        pytest.param(b'{"rss": 1, "cpu_percent": 0}', 0.0, id="zero"),
        pytest.param(b'{"rss": 1}', None, id="not-tracked"),
    ],
)
def test_cpu_percent_is_read_from_the_metrics(body: bytes, expected: float | None) -> None:
    assert read_cpu_percent(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"cpu_percent": "lots"}', id="text"),
        pytest.param(b'{"cpu_percent": true}', id="bool"),
        pytest.param(b'{"cpu_percent": -5}', id="negative"),
        pytest.param(b'{"cpu_percent": 1e300}', id="absurd"),
        pytest.param(b"[]", id="list"),
        pytest.param(b"<html>", id="html"),
        pytest.param(NESTED, id="nested"),
    ],
)
def test_unusable_metrics_are_refused(body: bytes) -> None:
    with pytest.raises(AnswerRefused):
        read_cpu_percent(body)


# --- the verdict ----------------------------------------------------------------------


def judge(
    activity: ServerActivity,
    timeout: float = HOUR,
    settings: ActivitySettings = DEFAULTS,
    started: datetime | None = STARTED,
) -> tuple[str, datetime | None, str | None, str]:
    found = judge_activity(activity, now=NOW, started=started, timeout=timeout, settings=settings)
    return found.source, found.idle_since, found.protected_by, found.reason


IDLE_KERNEL = KernelSeen("python3", ago(2 * HOUR), busy=False, connections=3)
CPU_ON = ActivitySettings(cpu_threshold=50.0)


@pytest.mark.parametrize(
    ("activity", "settings", "expected"),
    [
        pytest.param(
            ServerActivity(kernels=(IDLE_KERNEL,)),
            ActivitySettings(),
            (
                "server",
                ago(2 * HOUR),
                None,
                "idle 2h (>= 1h) according to the server "
                "(newest: kernel python3 last sent a message)",
            ),
            id="idle-kernel-with-open-connections-is-idle",
        ),
        pytest.param(
            ServerActivity(kernels=(KernelSeen("python3", ago(20), False, 0),)),
            ActivitySettings(),
            (
                "server",
                ago(20),
                "kernel",
                "protected: kernel python3 last sent a message 20s ago (< 1h)",
            ),
            id="cell-ran-seconds-ago",
        ),
        pytest.param(
            ServerActivity(kernels=(IDLE_KERNEL,), terminals=(TerminalSeen("2", ago(40)),)),
            ActivitySettings(),
            (
                "server",
                ago(40),
                "terminal",
                "protected: terminal 2 had input or output 40s ago (< 1h)",
            ),
            id="terminal-printed-40s-ago",
        ),
        pytest.param(
            ServerActivity(terminals=(TerminalSeen("1", ago(2 * HOUR)),)),
            ActivitySettings(),
            (
                "server",
                ago(2 * HOUR),
                None,
                "idle 2h (>= 1h) according to the server (newest: terminal 1 had input or output)",
            ),
            id="idle-terminal",
        ),
        pytest.param(
            ServerActivity(kernels=(IDLE_KERNEL,), cpu=Cpu(180.0, 2.0)),
            CPU_ON,
            ("server", None, "cpu", "protected: processes used 180% CPU over 2s"),
            id="cpu-above-threshold",
        ),
        pytest.param(
            ServerActivity(kernels=(IDLE_KERNEL,), cpu=Cpu(180.0, 2.0)),
            ActivitySettings(),
            (
                "server",
                ago(2 * HOUR),
                None,
                "idle 2h (>= 1h) according to the server "
                "(newest: kernel python3 last sent a message)",
            ),
            id="cpu-ignored-with-threshold-off",
        ),
        pytest.param(
            ServerActivity(kernels=(IDLE_KERNEL,), cpu=Cpu(49.9, 2.0)),
            CPU_ON,
            (
                "server",
                ago(2 * HOUR),
                None,
                "idle 2h (>= 1h) according to the server "
                "(newest: kernel python3 last sent a message)",
            ),
            id="cpu-below-threshold",
        ),
        pytest.param(
            ServerActivity(kernels=(IDLE_KERNEL,), cpu=Cpu(None, 2.0, "CPU not tracked")),
            CPU_ON,
            (
                "server",
                ago(2 * HOUR),
                None,
                "idle 2h (>= 1h) according to the server "
                "(newest: kernel python3 last sent a message)",
            ),
            id="cpu-unknown-is-no-protection",
        ),
        pytest.param(
            ServerActivity(),
            ActivitySettings(),
            ("hub", None, None, "no kernels or terminals; the hub's record decides"),
            id="no-sessions-hub",
        ),
        pytest.param(
            ServerActivity(),
            ActivitySettings(no_sessions=NoSessions.IDLE),
            (
                "server",
                STARTED,
                None,
                "idle 3h (>= 1h) according to the server "
                "(newest: started, no kernels or terminals since)",
            ),
            id="no-sessions-idle",
        ),
        pytest.param(
            ServerActivity.failed_with("HTTP 404: no api/kernels (not a Jupyter server?)"),
            ActivitySettings(no_sessions=NoSessions.IDLE),
            (
                "hub",
                None,
                None,
                "probe failed (HTTP 404: no api/kernels (not a Jupyter "
                "server?)); the hub's record decides",
            ),
            id="failed-probe-falls-back",
        ),
    ],
)
def test_the_verdict(
    activity: ServerActivity,
    settings: ActivitySettings,
    expected: tuple[str, datetime | None, str | None, str],
) -> None:
    assert judge(activity, settings=settings) == expected


def test_a_busy_kernel_is_work_now_and_reports_since_when() -> None:
    activity = ServerActivity(
        kernels=(
            KernelSeen("python3", ago(2 * HOUR), busy=True, connections=0),
            KernelSeen("ir", ago(5 * HOUR), busy=True, connections=0),
        )
    )
    found = judge_activity(
        activity, now=NOW, started=STARTED, timeout=HOUR, settings=ActivitySettings()
    )
    assert (found.working, found.protected_by, found.busy_since) == (
        "busy_kernel",
        "busy_kernel",
        ago(5 * HOUR),
    )
    assert found.idle_since is None
    assert "busy since" in found.reason
    assert "(+1 more busy)" in found.reason


def test_idle_time_never_counts_from_before_the_server_started() -> None:
    """A kernel list copied from an older server run (or a clock behind) cannot make a
    server that started 10 minutes ago idle for hours."""
    activity = ServerActivity(kernels=(IDLE_KERNEL,))
    source, since, protected, _ = judge(activity, started=ago(600))
    assert (source, since, protected) == ("server", ago(600), "kernel")


def test_a_server_with_no_sessions_and_no_start_time_falls_back() -> None:
    settings = ActivitySettings(no_sessions=NoSessions.IDLE)
    assert judge(ServerActivity(), settings=settings, started=None)[0] == "hub"


def test_exactly_at_the_limit_is_idle() -> None:
    activity = ServerActivity(kernels=(KernelSeen("python3", ago(HOUR), False, 0),))
    assert judge(activity)[2] is None


# --- the probe ------------------------------------------------------------------------


class Clock:
    """A monotonic clock that the probe's ``sleep`` advances."""

    def __init__(self) -> None:
        self.now = 100.0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


@pytest.fixture
def server() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_probe(clock: Clock, settings: ActivitySettings = DEFAULTS) -> ServerActivityProbe:
    return ServerActivityProbe(
        through_proxy(PROXY), settings=settings, sleep=clock.sleep, clock=clock
    )


@pytest.fixture
def probe(clock: Clock) -> Iterator[ServerActivityProbe]:
    made = make_probe(clock)
    yield made
    made.close()


def answer(
    server: responses.RequestsMock,
    path: str,
    body: object = (),
    status: int = 200,
    **kwargs: object,
) -> None:
    content = (
        body
        if isinstance(body, bytes)
        else json.dumps(list(body) if isinstance(body, tuple) else body).encode()
    )
    server.add(responses.GET, BASE + path, body=content, status=status, **kwargs)  # type: ignore[arg-type]


def token() -> str:
    return TOKEN


def test_kernels_and_terminals_are_read_without_counting_as_activity(
    server: responses.RequestsMock, probe: ServerActivityProbe
) -> None:
    answer(server, "api/kernels", [kernel_model("idle", 600)])
    answer(server, "api/terminals", [terminal_model("1", 40)])
    activity = probe.probe(at("/user/ann/"), token)
    assert activity.failure is None
    assert activity.kernels[0].last_activity == ago(600)
    assert activity.terminals == (TerminalSeen("1", ago(40)),)
    assert activity.cpu is None  # no threshold: metrics never asked
    assert len(server.calls) == 2
    for call in server.calls:
        assert dict(parse_qsl(urlsplit(str(call.request.url)).query)) == {"no_track_activity": "1"}
        assert call.request.headers["Authorization"] == f"token {TOKEN}"


def test_terminals_answering_404_means_terminals_are_disabled_not_a_failure(
    server: responses.RequestsMock, probe: ServerActivityProbe
) -> None:
    answer(server, "api/kernels", [kernel_model()])
    answer(server, "api/terminals", {"message": "Not Found"}, status=404)
    activity = probe.probe(at("/user/ann/"), token)
    assert (activity.failure, activity.terminals_enabled) == (None, False)


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        pytest.param(500, b"{}", "terminals: HTTP 500 from api/terminals", id="500"),
        pytest.param(403, b"{}", "refused its user's probe token", id="403"),
        pytest.param(200, b"<html>", "terminals: the answer is not JSON", id="html"),
        pytest.param(302, b"", "redirected (not followed)", id="redirect"),
    ],
)
def test_terminals_failing_otherwise_fails_the_probe(
    server: responses.RequestsMock,
    probe: ServerActivityProbe,
    status: int,
    body: bytes,
    reason: str,
) -> None:
    """A terminal job that cannot be seen must not be culled on the kernels alone."""
    answer(server, "api/kernels", [kernel_model()])
    answer(server, "api/terminals", body, status=status, headers={"Location": "/elsewhere"})
    activity = probe.probe(at("/user/ann/"), token)
    assert activity.failure is not None
    assert reason in activity.failure


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        pytest.param(
            404, b"Not Found", "HTTP 404: no api/kernels (not a Jupyter server?)", id="404"
        ),
        pytest.param(500, b"{}", "HTTP 500 from api/kernels", id="500"),
        pytest.param(200, b"<html>RStudio</html>", "the answer is not JSON", id="html"),
        pytest.param(302, b"", "HTTP 302 from api/kernels: redirected", id="redirect"),
        pytest.param(200, b'{"kernels": []}', "not a list of kernels", id="object"),
    ],
)
def test_a_kernels_answer_that_is_not_a_kernel_list_fails_the_probe(
    server: responses.RequestsMock,
    probe: ServerActivityProbe,
    status: int,
    body: bytes,
    reason: str,
) -> None:
    answer(server, "api/kernels", body, status=status, headers={"Location": "/login"})
    activity = probe.probe(at("/user/ann/"), token)
    assert activity.failure is not None
    assert reason in activity.failure
    assert len(server.calls) == 1  # nothing more is asked of a server that failed
    found = judge_activity(
        activity, now=NOW, started=STARTED, timeout=HOUR, settings=ActivitySettings()
    )
    assert (found.source, found.idle_since) == ("hub", None)


def test_an_unreachable_server_is_tried_twice_then_failed(
    server: responses.RequestsMock, probe: ServerActivityProbe, clock: Clock
) -> None:
    server.add(responses.GET, BASE + "api/kernels", body=requests.ConnectionError("refused"))
    activity = probe.probe(at("/user/ann/"), token)
    assert activity.failure == "connection failed (ConnectionError) after 2 attempts"
    assert activity.attempts == 2
    assert len(server.calls) == 2
    assert clock.pauses == [0.5]


def test_a_server_that_does_not_answer_in_time_is_asked_once(
    server: responses.RequestsMock, probe: ServerActivityProbe, clock: Clock
) -> None:
    """A timeout is not retried (issue 24): the server is most often gone or hung, and a
    second wait would double what it costs the pass (the old probe waited twice)."""
    server.add(responses.GET, BASE + "api/kernels", body=requests.ReadTimeout("slow"))
    activity = probe.probe(at("/user/ann/"), token)
    assert activity.failure == "no answer within 5s"
    assert (activity.attempts, len(server.calls), clock.pauses) == (1, 1, [])


def test_a_timeout_of_the_first_cpu_reading_ends_the_probe(
    server: responses.RequestsMock, clock: Clock
) -> None:
    """With --cpu-threshold the metrics come first: a server that did not answer them
    in time is not asked for its kernels too (the old probe waited there again)."""
    made = make_probe(clock, ActivitySettings(cpu_threshold=50))
    server.add(responses.GET, BASE + "api/metrics/v1", body=requests.ConnectTimeout("no"))
    answer(server, "api/kernels", [kernel_model()])
    activity = made.probe(at("/user/ann/"), token)
    made.close()
    assert activity.failure == "no answer within 5s"
    assert [urlsplit(call.request.url).path for call in server.calls] == [
        "/user/ann/api/metrics/v1"
    ]


def test_a_transient_status_then_an_answer_succeeds(
    server: responses.RequestsMock, probe: ServerActivityProbe
) -> None:
    answer(server, "api/kernels", b"", status=503)
    answer(server, "api/kernels", [])
    answer(server, "api/terminals", [])
    assert probe.probe(at("/user/ann/"), token).failure is None


def test_a_huge_answer_is_a_failure(
    server: responses.RequestsMock, probe: ServerActivityProbe
) -> None:
    answer(server, "api/kernels", b"[" + b" " * (MAX_ANSWER + 10) + b"]")
    activity = probe.probe(at("/user/ann/"), token)
    assert activity.failure == f"answer larger than {MAX_ANSWER // 1024} KiB"


@pytest.mark.parametrize("url", ["//evil.test/x/", "http://evil.test/", "user/ann/", None])
def test_no_token_is_asked_for_a_server_url_that_is_not_a_plain_path(
    probe: ServerActivityProbe, url: str | None
) -> None:
    def no_token() -> str:
        raise AssertionError("a token was asked for a server that is not probed")

    activity = probe.probe(at(url), no_token)
    assert activity.failure is not None
    assert activity.attempts == 0


def test_cpu_is_read_twice_a_window_apart(server: responses.RequestsMock, clock: Clock) -> None:
    made = make_probe(clock, ActivitySettings(cpu_threshold=50, cpu_window=2.0))
    answer(server, "api/metrics/v1", {"rss": 1, "cpu_percent": 0.0})
    answer(server, "api/metrics/v1", {"rss": 1, "cpu_percent": 180.0})
    answer(server, "api/kernels", [kernel_model()])
    answer(server, "api/terminals", [])
    activity = made.probe(at("/user/ann/"), token)
    made.close()
    assert activity.cpu == Cpu(180.0, 2.0)
    assert activity.attempts == 4
    assert clock.pauses == [2.0]
    paths = [urlsplit(call.request.url).path for call in server.calls]
    assert paths == [
        "/user/ann/api/metrics/v1",
        "/user/ann/api/kernels",
        "/user/ann/api/terminals",
        "/user/ann/api/metrics/v1",
    ]
    for call in server.calls:
        assert "no_track_activity=1" in (urlsplit(call.request.url).query)


@pytest.mark.parametrize(
    ("status", "body", "missing"),
    [
        pytest.param(404, b"", "no jupyter-resource-usage metrics", id="not-installed"),
        pytest.param(200, b'{"rss": 1}', "CPU not tracked", id="not-tracked"),
        pytest.param(200, b"<html>", "not JSON", id="html"),
    ],
)
def test_cpu_that_cannot_be_read_is_noted_never_a_failure(
    server: responses.RequestsMock, clock: Clock, status: int, body: bytes, missing: str
) -> None:
    made = make_probe(clock, ActivitySettings(cpu_threshold=50))
    answer(server, "api/metrics/v1", body, status=status)
    answer(server, "api/kernels", [kernel_model()])
    answer(server, "api/terminals", [])
    activity = made.probe(at("/user/ann/"), token)
    made.close()
    assert activity.failure is None
    assert activity.cpu is not None
    assert activity.cpu.percent is None
    assert activity.cpu.missing is not None
    assert missing in activity.cpu.missing
    assert clock.pauses == []  # no window waited for a figure that cannot come


def test_the_token_is_never_logged(
    server: responses.RequestsMock, probe: ServerActivityProbe, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.add(responses.GET, BASE + "api/kernels", body=requests.ConnectionError(TOKEN))
    activity = probe.probe(at("/user/ann/"), token)
    assert TOKEN not in caplog.text
    assert TOKEN not in str(activity)


# --- a server whose clock is wrong ---------------------------------------------------------


def test_a_server_clock_behind_is_corrected_before_judging() -> None:
    """The server's clock is 10 minutes behind, so its kernel's timestamp reads an hour
    ago when the kernel really ran 50 minutes ago: uncorrected, a 55-minute limit would
    cull it 5 minutes early."""
    kernel = KernelSeen("python3", ago(3600), busy=False, connections=0)
    uncorrected = ServerActivity(kernels=(kernel,))
    corrected = ServerActivity(kernels=(kernel,), server_behind=600.0)
    assert judge(uncorrected, timeout=3300)[2] is None
    source, since, protected, reason = judge(corrected, timeout=3300)
    assert (source, since, protected) == ("server", ago(3000), "kernel")
    assert reason.endswith("; the server's clock is 10m behind this machine's (corrected)")


def test_a_clock_difference_within_the_headers_resolution_is_left_alone() -> None:
    kernel = KernelSeen("python3", ago(3000), busy=False, connections=0)
    found = judge(ServerActivity(kernels=(kernel,), server_behind=1.5))
    assert found[1] == ago(3000)
    assert "clock" not in found[3]


def test_the_probe_reads_how_far_the_servers_clock_is_behind(
    server: responses.RequestsMock, clock: Clock
) -> None:
    made = ServerActivityProbe(
        through_proxy(PROXY), sleep=clock.sleep, clock=clock, wall=lambda: NOW
    )
    answer(
        server,
        "api/kernels",
        [kernel_model()],
        headers={"Date": "Thu, 26 Nov 2026 11:50:00 GMT"},  # 10 minutes before NOW
    )
    answer(server, "api/terminals", [])
    activity = made.probe(at("/user/ann/"), token)
    made.close()
    assert activity.server_behind == 600.0


@pytest.mark.parametrize("date", ["", "yesterday", "Thu, 26 Nov 2026 11:50:00"])
def test_an_unusable_date_header_means_no_correction(
    server: responses.RequestsMock, clock: Clock, date: str
) -> None:
    made = ServerActivityProbe(
        through_proxy(PROXY), sleep=clock.sleep, clock=clock, wall=lambda: NOW
    )
    answer(server, "api/kernels", [kernel_model()], headers={"Date": date})
    answer(server, "api/terminals", [])
    activity = made.probe(at("/user/ann/"), token)
    made.close()
    assert activity.failure is None
    assert activity.server_behind is None


# --- the source, in the seam's terms -------------------------------------------------------


def target(age: float | None = 2 * HOUR, url: str | None = "/user/ann/") -> Target:
    return Target("ann", "", "ann", url, ago(30), age)


def source(
    activity: ServerActivity | Exception, busy_timeout: float = 0.0, limit: float | None = HOUR
) -> tuple[ServerActivitySource, list[ProbeTarget]]:
    asked: list[ProbeTarget] = []

    def prober(probe_target: ProbeTarget) -> ServerActivity:
        asked.append(probe_target)
        if isinstance(activity, Exception):
            raise activity
        return activity

    made = ServerActivitySource(
        prober,
        settings=DEFAULTS,
        limit_of=lambda _: limit,
        started_of=lambda _: STARTED,
        busy_timeout=busy_timeout,
    )
    return made, asked


def test_the_source_is_asked_about_every_running_server_old_enough() -> None:
    made, _ = source(ServerActivity())
    assert made.asks is Asks.RUNNING
    assert made.wanted(target(age=2 * HOUR))
    assert not made.wanted(target(age=HOUR - 1))  # cannot have been idle for its limit
    assert not source(ServerActivity(), limit=None)[0].wanted(target())  # no limit: never culled


def test_an_open_tab_is_idle_in_the_seams_terms() -> None:
    """The hub's record (30 s ago) says active; the kernels say idle for 2 hours."""
    made, asked = source(ServerActivity(kernels=(IDLE_KERNEL,), attempts=2))
    found = made.gather(target(), NOW)
    assert (found.source, found.keep, found.idle_since, found.failed) == (
        "server",
        None,
        ago(2 * HOUR),
        None,
    )
    assert found.attempts == 2
    assert asked == [ProbeTarget("ann", "", "/user/ann/", frozenset({""}))]


def test_a_printing_terminal_keeps_the_server_with_a_reason() -> None:
    made, _ = source(ServerActivity(terminals=(TerminalSeen("2", ago(40)),)))
    found = made.gather(target(), NOW)
    assert found.keep == "protected: terminal 2 had input or output 40s ago (< 1h)"
    assert found.idle_since == ago(40)


def test_a_busy_kernel_keeps_the_server_until_the_busy_limit() -> None:
    busy = ServerActivity(kernels=(KernelSeen("python3", ago(2 * HOUR), True, 0),))
    within = source(busy, busy_timeout=3 * HOUR)[0].gather(target(), NOW)
    past = source(busy, busy_timeout=HOUR)[0].gather(target(), NOW)
    assert within.keep is not None
    assert within.busy == "busy_kernel"
    assert (past.keep, past.busy) == (None, "busy_kernel")


@pytest.mark.parametrize(
    "activity",
    [
        pytest.param(ServerActivity.failed_with("HTTP 404"), id="failed"),
        pytest.param(RecursionError("deep"), id="raised"),
        pytest.param(ServerActivity(), id="no-sessions"),
    ],
)
def test_when_the_server_cannot_tell_the_hubs_record_decides(
    activity: ServerActivity | Exception,
) -> None:
    found = source(activity)[0].gather(target(), NOW)
    assert (found.keep, found.idle_since) == (None, None)
    assert found.failed is not None


def test_a_dry_run_sends_nothing() -> None:
    made, asked = source(ServerActivity())
    assert made.would_gather(target()) == Finding("server", detail="would_probe")
    assert asked == []


def test_format_duration_is_what_reasons_use() -> None:
    assert format_duration(40) == "40s"  # the reasons above rely on it
