"""Properties of the pure policy and of record parsing, checked with hypothesis.

What an operator must be able to trust, stated for every input rather than for a table:
a server below its idle limit is never stopped; a user with a running or pending server
is never deleted; an excluded user is never touched; the plan does not depend on the
order users are listed in. The last properties drive a whole pass (``run_pass``) through
a fake client whose actions fail or succeed at random, to check that a deletion never
goes ahead unless every server of the user really stopped.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idle_cull.command.settings import Settings
from idle_cull.errors import HubUnavailable
from idle_cull.hub.pages import UserPage
from idle_cull.models import ActionResult, Outcome, RecordError, Server, User, parse_timestamp
from idle_cull.rules.policy import (
    CLOCK_RESOLUTION,
    Action,
    CullLimits,
    Plan,
    ServerDecision,
    idle_limit,
)
from idle_cull.runner import run_pass
from tests.support.records import NOW, plan_of

DAY = 86400.0

# --- strategies ---------------------------------------------------------------------------

seconds_ago = st.one_of(
    st.none(),
    st.floats(min_value=-DAY, max_value=30 * DAY, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 59.999, 60.0, 3600.0, 3600.001]),  # around typical limits
)
durations = st.one_of(
    st.sampled_from([0.0, 60.0, 3600.0, DAY]),
    st.floats(min_value=0, max_value=10 * DAY, allow_nan=False, allow_infinity=False),
)
names = st.text(alphabet="abcxyz-/%?# ü.", min_size=1, max_size=6)
groups = st.lists(st.sampled_from(["staff", "gpu", "students"]), unique=True, max_size=2)


def at(offset: float | None) -> datetime | None:
    return None if offset is None else NOW - timedelta(seconds=offset)


@st.composite
def servers(draw: st.DrawFn, name: str) -> Server:
    return Server(
        name=name,
        ready=draw(st.booleans()),
        pending=draw(st.sampled_from([None, None, "spawn", "stop", "check"])),
        started=at(draw(seconds_ago)),
        last_activity=at(draw(seconds_ago)),
        user_options=draw(st.sampled_from([None, {}, {"profile": "gpu"}, {"profile": "cpu"}])),
    )


@st.composite
def users(draw: st.DrawFn, name: str) -> User:
    server_names = draw(
        st.lists(st.sampled_from(["", "lab", "gpu-1", "x/y"]), unique=True, max_size=3)
    )
    return User(
        name=name,
        admin=draw(st.sampled_from([False, True, None])),
        created=at(draw(seconds_ago)),
        last_activity=at(draw(seconds_ago)),
        servers=tuple(draw(servers(n)) for n in server_names),
        groups=tuple(draw(groups)),
    )


@st.composite
def hubs(draw: st.DrawFn) -> list[User]:
    """Users with distinct names, as the runner hands them to the policy."""
    return [draw(users(n)) for n in draw(st.lists(names, unique=True, max_size=6))]


pairs = st.lists(
    st.tuples(st.sampled_from(["gpu", "cpu", "staff", "gpu-*", "lab"]), durations),
    max_size=2,
    unique_by=lambda p: p[0],
)
limits = st.builds(
    CullLimits,
    timeout=durations,
    max_age=st.one_of(st.just(0.0), durations),
    cull_users=st.booleans(),
    cull_admin_users=st.booleans(),
    cull_default_servers=st.booleans(),
    cull_named_servers=st.booleans(),
    remove_named_servers=st.booleans(),
    exclude_users=st.lists(st.sampled_from(["a*", "*/*", "x?", "zzz"]), max_size=2).map(tuple),
    exclude_groups=st.lists(st.sampled_from(["staff", "nobody"]), max_size=1).map(tuple),
    group_timeouts=pairs.map(tuple),
    profile_timeouts=pairs.map(tuple),
    server_timeouts=pairs.map(tuple),
    user_timeout=st.one_of(st.none(), durations),
    user_max_age=st.one_of(st.none(), durations),
)


def seconds_since(moment: datetime | None, now: datetime = NOW) -> float | None:
    """Seconds from ``moment`` to ``now``; up to CLOCK_RESOLUTION ahead reads as 0, as the
    policy reads it (the Date header's resolution, not skew)."""
    if moment is None:
        return None
    seconds = (now - moment).total_seconds()
    return 0.0 if -CLOCK_RESOLUTION <= seconds < 0 else seconds


def decisions_by_server(plan: Plan) -> dict[tuple[str, str], ServerDecision]:
    return {(d.user, d.server): d for d in plan.servers}


def is_excluded(user: User, rules: CullLimits) -> bool:
    return any(fnmatchcase(user.name, p) for p in rules.exclude_users) or bool(
        set(user.groups or ()) & set(rules.exclude_groups)
    )


# --- the policy ---------------------------------------------------------------------------


@given(hubs(), limits)
def test_a_server_below_its_idle_limit_is_never_stopped(hub: list[User], rules: CullLimits) -> None:
    plan = decisions_by_server(plan_of(hub, NOW, rules))
    for user in hub:
        for server in user.servers:
            idle = seconds_since(server.last_activity or server.started)
            age = seconds_since(server.started)
            limit, _ = idle_limit(user, server, rules)
            too_old = bool(rules.max_age) and age is not None and age >= rules.max_age
            if idle is None or (idle < limit and not too_old):
                assert plan[(user.name, server.name)].action is not Action.STOP


@given(hubs(), limits)
def test_with_only_timeout_nothing_younger_than_it_is_stopped(
    hub: list[User], rules: CullLimits
) -> None:
    """The same without per-kind rules, where "its limit" is plainly ``--timeout``."""
    plain = CullLimits(timeout=rules.timeout, cull_users=rules.cull_users)
    for decision in plan_of(hub, NOW, plain).stops:
        assert decision.idle_seconds is not None
        assert decision.idle_seconds >= rules.timeout


@given(hubs(), limits)
def test_pending_not_ready_and_protected_kinds_are_never_stopped(
    hub: list[User], rules: CullLimits
) -> None:
    plan = decisions_by_server(plan_of(hub, NOW, rules))
    for user in hub:
        for server in user.servers:
            action = plan[(user.name, server.name)].action
            if server.pending or not server.ready:
                assert action is Action.SKIP or (action is Action.KEEP and is_excluded(user, rules))
            if server.is_default and not rules.cull_default_servers:
                assert action is not Action.STOP
            if not server.is_default and not rules.cull_named_servers:
                assert action is not Action.STOP


@given(hubs(), limits)
def test_a_user_with_a_running_or_pending_server_is_never_deleted(
    hub: list[User], rules: CullLimits
) -> None:
    """Deleting a user stops its servers: only users whose every server is being stopped go."""
    plan = plan_of(hub, NOW, rules)
    servers_plan = decisions_by_server(plan)
    by_name = {u.name: u for u in hub}
    for deletion in plan.deletions:
        user = by_name[deletion.user]
        assert all(not s.pending for s in user.servers)
        assert all(servers_plan[(user.name, s.name)].action is Action.STOP for s in user.servers)
        assert set(deletion.servers_to_stop_first) == {s.name for s in user.servers}


@given(hubs(), limits)
def test_an_excluded_user_is_never_touched(hub: list[User], rules: CullLimits) -> None:
    plan = plan_of(hub, NOW, rules)
    touched = {d.user for d in plan.stops} | {d.user for d in plan.deletions}
    assert not {u.name for u in hub if is_excluded(u, rules)} & touched


@given(hubs(), limits)
def test_admins_are_never_deleted_when_protected(hub: list[User], rules: CullLimits) -> None:
    plan = plan_of(hub, NOW, rules)
    deleted = {d.user for d in plan.deletions}
    if not rules.cull_admin_users:
        assert not {u.name for u in hub if u.admin is not False} & deleted
    if not rules.cull_users:
        assert deleted == set()


@given(st.data(), hubs(), limits)
def test_the_plan_does_not_depend_on_listing_order(
    data: st.DataObject, hub: list[User], rules: CullLimits
) -> None:
    shuffled = data.draw(st.permutations(hub))
    first, second = plan_of(hub, NOW, rules), plan_of(shuffled, NOW, rules)
    assert set(first.servers) == set(second.servers)
    assert set(first.users) == set(second.users)


@given(st.data(), hubs(), limits, st.one_of(st.none(), durations))
def test_counting_kept_users_instead_of_holding_them_changes_no_action(
    data: st.DataObject, hub: list[User], rules: CullLimits, window: float | None
) -> None:
    """The runner's lean plan (kept users only counted, duplicates replaced) acts exactly
    like the full one: same stops, deletions, warnings and cap base, and every keep is
    either held or counted, once per user even when users come twice."""
    repeats = data.draw(st.lists(st.sampled_from(hub), max_size=3)) if hub else []
    listing = [*hub, *repeats]  # a user listed again (the list shifted while paging)
    full = plan_of(hub, NOW, rules, warn_within=window, list_kept=True)
    lean = plan_of(listing, NOW, rules, warn_within=window, list_kept=False)
    assert set(lean.stops) == set(full.stops)
    assert set(lean.deletions) == set(full.deletions)
    # a repeated user's warning comes in its later place; reports sort warnings anyway
    assert sorted(lean.upcoming, key=repr) == sorted(full.upcoming, key=repr)
    assert lean.running == full.running
    assert lean.users_judged == full.users_judged == len(hub)
    kept_servers = sum(1 for d in full.servers if d.action is Action.KEEP)
    kept_users = sum(1 for d in full.users if d.action is Action.KEEP)
    held_servers = sum(1 for d in lean.servers if d.action is Action.KEEP)
    held_users = sum(1 for d in lean.users if d.action is Action.KEEP)
    assert (held_servers + lean.counted_keeps[0], held_users + lean.counted_keeps[1]) == (
        kept_servers,
        kept_users,
    )
    for deletion in lean.deletions:
        assert lean.listed_user(deletion.user) is not None


@given(hubs(), limits, st.floats(min_value=0, max_value=10 * DAY, allow_nan=False))
def test_waiting_longer_never_saves_what_was_due(
    hub: list[User], rules: CullLimits, later: float
) -> None:
    """Decisions are monotone in time: what is stopped now is stopped at any later moment."""
    now_stops = {(d.user, d.server) for d in plan_of(hub, NOW, rules).stops}
    later_plan = plan_of(hub, NOW + timedelta(seconds=later), rules)
    assert now_stops <= {(d.user, d.server) for d in later_plan.stops}


# --- record parsing -----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
timestamp_like = st.one_of(
    st.text(max_size=40),
    st.from_regex(
        r"\A[0-9]{1,5}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?\Z"
    ),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.builds(
        lambda d, m: d.replace(tzinfo=timezone(timedelta(minutes=m))).isoformat(),
        st.datetimes(),
        st.integers(-1439, 1439),
    ),
    st.datetimes().map(lambda d: d.isoformat()),
)


@given(st.one_of(timestamp_like, json_values))
def test_parse_timestamp_returns_utc_or_rejects(value: Any) -> None:
    try:
        parsed = parse_timestamp(value, field="t")
    except RecordError:
        return
    assert parsed is None or parsed.utcoffset() == timedelta(0)


# ISO 8601 offsets are whole minutes (zoneinfo's historical local mean times are not)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)


@given(st.datetimes(), offsets)
def test_parse_timestamp_keeps_the_instant_whatever_the_offset(
    local: datetime, offset: timezone
) -> None:
    moment = local.replace(tzinfo=offset)
    try:
        expected = moment.astimezone(timezone.utc)
    except OverflowError:  # the instant itself is outside datetime's range in UTC
        return
    assert parse_timestamp(moment.isoformat(), field="t") == expected


server_shaped = st.fixed_dictionaries(
    {},
    optional={
        "name": json_values,
        "ready": st.one_of(st.booleans(), json_values),
        "pending": st.one_of(st.sampled_from([None, "spawn", "stop"]), json_values),
        "started": st.one_of(timestamp_like, json_values),
        "last_activity": st.one_of(timestamp_like, json_values),
        "url": json_values,
        "user_options": json_values,
    },
)
user_shaped = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(names, json_values),
        "admin": st.one_of(st.booleans(), json_values),
        "created": st.one_of(timestamp_like, json_values),
        "last_activity": st.one_of(timestamp_like, json_values),
        "groups": st.one_of(st.lists(st.text(max_size=5)), json_values),
        "servers": st.one_of(
            st.dictionaries(st.sampled_from(["", "lab"]), st.one_of(server_shaped, json_values)),
            json_values,
        ),
        "server": json_values,
        "pending": json_values,
    },
)


@given(st.one_of(user_shaped, json_values))
def test_any_record_parses_or_is_rejected_with_record_error(record: Any) -> None:
    """Whatever the hub (or something in between) sends, one record never crashes a pass."""
    try:
        user = User.from_api(record)
    except RecordError:
        return
    assert isinstance(user.name, str)
    assert user.name
    for server in user.servers:
        assert isinstance(server.ready, bool)
        assert server.pending is None or isinstance(server.pending, str)
    plan_of([user], NOW, CullLimits(timeout=60, cull_users=True))  # and the policy copes


# --- a whole pass with actions that fail at random ----------------------------------------


class FakeHub:
    """A client for ``run_pass`` over fixed records, whose stops end as ``outcomes`` says.

    A stop that succeeds removes the server from the user's record (the re-check then
    sees it gone); a pending one leaves it stopping; a failed one raises like the client.
    """

    def __init__(
        self, records: dict[str, dict[str, Any]], outcomes: dict[tuple[str, str], Outcome]
    ) -> None:
        self.records = records
        self.outcomes = outcomes
        self.stops: list[tuple[str, str]] = []
        self.stopped: set[tuple[str, str]] = set()
        self.deleted: list[str] = []

    def hub_version(self) -> str:
        return "6.1.1"

    def hub_now(self) -> datetime | None:
        return None

    def token_owner(self) -> dict[str, Any] | None:
        return None  # as a hub before 2.0: no scopes to check

    def group_exists(self, name: str) -> bool | None:
        return True

    def group_names(self) -> list[str] | None:
        return None

    def user_page(self, state: str | None, offset: int, limit: int = 0) -> UserPage:
        """Everyone of ``state`` at once, as a hub before 2.0 answers (no pagination)."""
        wanted = [r for r in self.records.values() if bool(r["servers"]) == (state == "ready")]
        return UserPage(wanted, offset, limit, None)

    def get_user(self, name: str) -> dict[str, Any] | None:
        return self.records.get(name)

    def responsiveness(self) -> float | None:
        return 0.001

    def stop_server(self, user: str, server: str, *, remove: bool = False) -> ActionResult:
        self.stops.append((user, server))
        outcome = self.outcomes.get((user, server), Outcome.STOPPED)
        if outcome is Outcome.FAILED:
            raise HubUnavailable(f"could not stop server {user}/{server}: HTTP 503", attempts=5)
        if outcome in (Outcome.STOPPED, Outcome.GONE):
            self.stopped.add((user, server))
            self.records[user]["servers"].pop(server, None)
        else:
            self.records[user]["servers"][server]["pending"] = "stop"
        return ActionResult(outcome, 1)

    def delete_user(self, name: str) -> ActionResult:
        self.deleted.append(name)
        self.records.pop(name, None)
        return ActionResult(Outcome.DELETED, 1)

    def close(self) -> None:
        pass


def _record(user: User) -> dict[str, Any]:
    def iso(moment: datetime | None) -> str | None:
        return None if moment is None else moment.isoformat()

    return {
        "name": user.name,
        "admin": user.admin,
        "created": iso(user.created),
        "last_activity": iso(user.last_activity),
        "groups": list(user.groups or ()),
        "servers": {
            s.name: {
                "name": s.name,
                "ready": s.ready,
                "pending": s.pending,
                "started": iso(s.started),
                "last_activity": iso(s.last_activity),
                "user_options": s.user_options,
            }
            for s in user.servers
        },
    }


action_outcomes = st.sampled_from([Outcome.STOPPED, Outcome.GONE, Outcome.PENDING, Outcome.FAILED])


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60)
@given(st.data(), hubs(), limits, st.booleans())
def test_a_pass_deletes_a_user_only_after_all_its_servers_stopped(
    data: st.DataObject, hub: list[User], rules: CullLimits, recheck: bool
) -> None:
    rules = replace(rules, cull_users=True)
    records = {u.name: _record(u) for u in hub}
    outcomes = {
        (u.name, s.name): data.draw(action_outcomes, label=f"{u.name}/{s.name}")
        for u in hub
        for s in u.servers
    }
    client = FakeHub(records, outcomes)
    options = Settings(
        url="http://hub.test/hub/api",
        token="t0ken-for-tests",
        limits=rules,
        clock="local",
        recheck=recheck,
        concurrency=3,
    )
    report = run_pass(options, client, clock=lambda: NOW)
    plan = plan_of(hub, NOW, rules)
    assert set(client.stops) <= {(d.user, d.server) for d in plan.stops}
    assert set(client.deleted) <= {d.user for d in plan.deletions}
    listed = {u.name: u for u in hub}
    for name in client.deleted:
        assert {(name, s.name) for s in listed[name].servers} <= client.stopped
    # exit 1 exactly when a stop the pass really sent failed after its retries
    failed = any(outcomes[stop] is Outcome.FAILED for stop in client.stops)
    assert (report.exit_status() == 1) == failed
