"""Preflight: the token's scopes and the named groups are checked before listing; rules
that named nobody are warned about."""

from __future__ import annotations

import json
import re

import pytest
import responses

from idle_cull.errors import HubProtocolError
from idle_cull.hub.client import HubClient
from idle_cull.preflight import missing_scopes, needed_scopes, probing_refusal, role_snippet
from idle_cull.rules.policy import CullLimits
from tests.support.cli import run
from tests.support.emulated_hub import SERVICE_NAME, TOKEN, URL, EmulatedHub, server_json, user_json

BASIC = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


@pytest.mark.parametrize(
    ("limits", "scopes", "missing"),
    [
        pytest.param(CullLimits(), BASIC, [], id="basic-enough"),
        pytest.param(
            CullLimits(),
            ["list:users", "read:users:activity", "read:servers"],
            ["delete:servers"],
            id="no-delete-servers",
        ),
        pytest.param(CullLimits(), [], BASIC, id="nothing"),
        pytest.param(
            CullLimits(cull_users=True),
            BASIC,
            ["read:users", "delete:users"],
            id="cull-users-needs-more",
        ),
        pytest.param(
            CullLimits(cull_users=True),
            [*BASIC, "read:users", "delete:users"],
            [],
            id="cull-users-expanded-admin",
        ),
        pytest.param(
            CullLimits(exclude_groups=("staff",)),
            BASIC,
            ["read:users:groups", "read:groups:name"],
            id="groups-need-groups",
        ),
        pytest.param(
            CullLimits(exclude_groups=("staff",)),
            [*BASIC, "read:users:groups"],
            ["read:groups:name"],
            id="group-rules-need-to-check-the-groups",
        ),
        pytest.param(
            CullLimits(group_timeouts=(("staff", 60),)),
            [*BASIC, "read:users:groups", "read:groups:name"],
            [],
            id="group-timeout-ok",
        ),
        pytest.param(
            CullLimits(exclude_groups=("staff",)),
            [*BASIC, "read:users:groups", "read:groups:name!group=staff"],
            [],
            id="read-groups-name-for-the-named-group-only",
        ),
        pytest.param(
            CullLimits(),
            [*BASIC[:3], "delete:servers!group=students"],
            ["delete:servers"],
            id="filtered-action-but-lists-everyone",
        ),
        pytest.param(
            CullLimits(), [f"{s}!group=students" for s in BASIC], [], id="consistently-filtered"
        ),
        pytest.param(
            CullLimits(),
            ["list:users!group=students", "read:users:activity", "read:servers", "delete:servers"],
            [],
            id="filtered-listing-unfiltered-rest",
        ),
        pytest.param(
            CullLimits(),
            [
                "list:users!group=students",
                "list:users!group=staff",
                "read:users:activity",
                "read:servers",
                "delete:servers!group=students",
            ],
            ["delete:servers"],
            id="action-covers-only-part-of-listing",
        ),
    ],
)
def test_missing_scopes(limits: CullLimits, scopes: list[str], missing: list[str]) -> None:
    found = missing_scopes(needed_scopes(limits), scopes)
    assert [phrase.split(" ", 1)[0] for phrase in found] == missing


def test_filtered_scope_message_says_why() -> None:
    scopes = [*BASIC[:3], "delete:servers!group=students"]
    (phrase,) = missing_scopes(needed_scopes(CullLimits()), scopes)
    assert "held only for group=students, but the token lists every user" in phrase


def test_group_rules_need_no_group_check_when_the_operator_allows_unchecked_groups() -> None:
    limits = CullLimits(exclude_groups=("staff",))
    needs = needed_scopes(limits, allow_unchecked_groups=True)
    assert missing_scopes(needs, [*BASIC, "read:users:groups"]) == []


def pasted(snippet: str) -> dict[str, object]:
    """The one role the snippet defines, as jupyterhub_config.py would read it."""
    namespace: dict[str, object] = {"c": type("C", (), {"JupyterHub": type("J", (), {})()})()}
    exec(snippet, namespace)  # the operator pastes it into jupyterhub_config.py
    (role,) = namespace["c"].JupyterHub.load_roles  # type: ignore[attr-defined]
    return role  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("owner", "role_name", "holder"),
    [
        pytest.param(
            {"kind": "service", "name": "idle-culler"},
            "idle-culler",
            {"services": ["idle-culler"]},
            id="named-after-the-service",
        ),
        pytest.param(
            {"kind": "service", "name": "jupyterhub-idle-culler", "roles": ["culler-role"]},
            "culler-role",
            {"services": ["jupyterhub-idle-culler"]},
            id="the-services-own-role",
        ),
        pytest.param(
            {"kind": "user", "name": "ops", "roles": ["user", "culler"]},
            "idle-cull",
            {"users": ["ops"]},
            id="a-users-token",
        ),
        pytest.param(None, "idle-cull", {"services": ["<the service>"]}, id="owner-unknown"),
    ],
)
def test_role_snippet_is_python_for_the_tokens_owner_and_grants_everything(
    owner: dict[str, object] | None, role_name: str, holder: dict[str, list[str]]
) -> None:
    needs = needed_scopes(CullLimits(cull_users=True, exclude_groups=("staff",)))
    role = pasted(role_snippet(needs, owner))
    assert role == {"name": role_name, "scopes": [need.scope for need in needs], **holder}
    assert "read:groups:name" in role["scopes"]  # type: ignore[operator]


def _owner(emulated_hub: EmulatedHub, scopes: list[str] | None) -> None:
    emulated_hub.token_scopes = scopes


def _listed(emulated_hub: EmulatedHub) -> bool:
    return any("/users?" in (call.request.url or "") for call in emulated_hub.calls)


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real"])
def test_missing_delete_servers_exits_3_before_listing(
    emulated_hub: EmulatedHub, dry_run: bool
) -> None:
    _owner(emulated_hub, ["list:users", "read:users:activity", "read:servers", "read:users:name"])
    emulated_hub.serve_users("ready", [user_json("ada", servers=[server_json(idle=7200)])])
    result = run(*(["--dry-run"] if dry_run else []), "--cull-users", "--report=json")
    assert result.exit_code == 3, result.stderr
    assert (
        "the token lacks what this configuration needs: delete:servers (to stop servers)"
        in result.stderr
    )
    assert "delete:users (to delete users (--cull-users); admin:users includes it)" in result.stderr
    assert (
        "read:users (to read admin and created (--cull-users); admin:users includes it)"
        in result.stderr
    )
    assert f'"services": ["{SERVICE_NAME}"]' in result.stderr
    assert result.stderr.count("nothing was culled") == 1
    assert not _listed(emulated_hub)
    assert json.loads(result.stdout)["exit_status"] == 3


def test_hub_without_scopes_in_its_answer_is_not_checked(emulated_hub: EmulatedHub) -> None:
    _owner(emulated_hub, None)
    emulated_hub.serve_users("ready", [])
    result = run("--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "does not report the token's scopes" in result.stderr


def test_every_scope_present_is_logged(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [])
    result = run("--dry-run")
    assert result.exit_code == 0, result.stderr
    assert (
        "the token has the scopes this pass needs: list:users, read:users:activity, read:servers, delete:servers"
        in result.stderr
    )


def test_a_group_the_hub_does_not_have_exits_2_before_listing(emulated_hub: EmulatedHub) -> None:
    emulated_hub.missing_groups.add("instructor")
    emulated_hub.serve_users("ready", [user_json("ada", servers=[server_json(idle=7200)])])
    result = run(
        "--dry-run", "--exclude-group=instructor", "--group-timeout=staff=2h", "--report=json"
    )
    assert result.exit_code == 2, result.stderr
    assert (
        "the hub has no such group: --exclude-group 'instructor'; check the spelling"
        in result.stderr
    )
    assert "'staff'" not in result.stderr.split("no such group")[1]
    assert not _listed(emulated_hub)
    assert json.loads(result.stdout)["exit_status"] == 2
    assert "exit=2" in result.stderr


UNCHECKED_WARNING = (
    "cannot check that the group(s) {groups} exist: the token may not read groups; going on "
    "as --allow-unchecked-groups asks, so a misspelt group protects nobody; grant "
    "read:groups:name to check them"
)


def test_groups_the_token_cannot_check_stop_the_pass_before_listing(
    emulated_hub: EmulatedHub,
) -> None:
    """Issue 23.1: a token with read:users:groups but not read:groups:name; ``instructor``
    may be a typo of the group that protects carol: the pass must not go on."""
    emulated_hub.token_owner = {"kind": "service", "name": "jupyterhub-idle-culler"}
    _owner(emulated_hub, [*BASIC, "read:users:groups"])
    emulated_hub.serve_users("ready", [user_json("carol", servers=[server_json(idle=7200)])])
    result = run("--timeout=1s", "--dry-run", "--exclude-group=instructor", "--report=text")
    assert result.exit_code == 3, result.stderr
    assert (
        "the token lacks what this configuration needs: read:groups:name (to check that the "
        "groups --exclude-group/--group-timeout name exist, so that a misspelt one stops the "
        "pass; --allow-unchecked-groups goes on without the check; read:groups includes it)"
    ) in result.stderr
    (snippet,) = re.findall(r"c\.JupyterHub\.load_roles = .*?\}\]", result.stderr)
    assert pasted(snippet) == {
        "name": "jupyterhub-idle-culler",
        "scopes": [*BASIC, "read:users:groups", "read:groups:name"],
        "services": ["jupyterhub-idle-culler"],
    }
    assert not _listed(emulated_hub)
    assert "would stop carol" not in result.stdout
    assert "exit status 3" in result.stdout


def test_allow_unchecked_groups_goes_on_with_a_warning(emulated_hub: EmulatedHub) -> None:
    _owner(emulated_hub, [*BASIC, "read:users:groups"])
    emulated_hub.serve_users("ready", [])
    result = run(
        "--dry-run", "--exclude-group=instructors", "--allow-unchecked-groups", "--report=json"
    )
    assert result.exit_code == 0, result.stderr
    warning = UNCHECKED_WARNING.format(groups="'instructors'")
    assert f"WARNING {warning}" in result.stderr
    assert json.loads(result.stdout)["warnings"] == [warning]
    assert not any("/groups" in (call.request.url or "") for call in emulated_hub.calls)


def test_rules_that_named_nobody_are_warned_about_in_log_and_report(
    emulated_hub: EmulatedHub,
) -> None:
    emulated_hub.serve_users(
        "ready",
        [
            user_json("alice", servers=[server_json(idle=60, user_options={"profile": "cpu"})]),
            user_json("bob", servers=[server_json("gpu-1", idle=60)]),
        ],
    )
    result = run(
        "--dry-run", "--report=json",
        "--exclude-user=Alice", "--exclude-user=bo*",
        "--profile-timeout=GPU=1h", "--profile-timeout=cpu=1h",
        "--server-timeout=gpu-*=1h", "--server-timeout=big-*=1h",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    warnings = json.loads(result.stdout)["warnings"]
    assert warnings == [
        "--exclude-user 'Alice' matched no listed user in this pass; check its spelling (names are case-sensitive)",
        "--profile-timeout 'GPU' matched no listed server's profile in this pass; check its spelling (names are case-sensitive)",
        "--server-timeout 'big-*' matched no listed named server in this pass; check its spelling (names are case-sensitive)",
    ]
    for warning in warnings:
        assert f"WARNING {warning}" in result.stderr


def test_a_rule_that_lost_to_a_stronger_one_still_matched(emulated_hub: EmulatedHub) -> None:
    # The profile limit beats the server-name limit; the server rule matched all the same.
    emulated_hub.serve_users(
        "ready",
        [
            user_json(
                "bob", servers=[server_json("gpu-1", idle=60, user_options={"profile": "gpu"})]
            )
        ],
    )
    result = run(
        "--dry-run", "--report=json", "--profile-timeout=gpu=1h", "--server-timeout=gpu-*=2h"
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["warnings"] == []


def test_warnings_in_the_text_report(emulated_hub: EmulatedHub) -> None:
    emulated_hub.serve_users("ready", [])
    result = run("--dry-run", "--report=text", "--exclude-user=nobody")
    assert "WARNING: --exclude-user 'nobody' matched no listed user" in result.stdout


def test_unknown_token_is_named_as_such(emulated_hub: EmulatedHub) -> None:
    # JupyterHub answers 403 "Forbidden" to GET /user for a token it does not know.
    emulated_hub.remove(responses.GET, f"{URL}/user")
    emulated_hub.get(f"{URL}/user", status=403, json={"status": 403, "message": "Forbidden"})
    result = run("--dry-run")
    assert result.exit_code == 3
    assert "the hub does not accept the API token (403 on GET /user" in result.stderr


@pytest.mark.parametrize(
    "scopes",
    [
        pytest.param([*BASIC, "read:users:groups", "read:groups:name!group=other"], id="filtered"),
        pytest.param(None, id="hub-before-2.0-reports-no-scopes"),
    ],
)
@pytest.mark.parametrize("allowed", [False, True], ids=["refused", "allowed"])
def test_a_group_the_token_may_not_read_stops_the_pass_unless_allowed(
    emulated_hub: EmulatedHub, scopes: list[str] | None, allowed: bool
) -> None:
    _owner(emulated_hub, scopes)
    emulated_hub.remove(responses.GET, re.compile(rf"{re.escape(URL)}/groups/[^/]+$"))
    emulated_hub.get(
        f"{URL}/groups/staff",
        status=403,
        json={
            "status": 403,
            "message": "Action is not authorized with current scopes; requires any of [read:groups]",
        },
    )
    emulated_hub.serve_users("ready", [])
    opt_out = ["--allow-unchecked-groups"] if allowed else []
    result = run("--dry-run", "--exclude-group=staff", "--report=json", *opt_out)
    if allowed:
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["warnings"] == [UNCHECKED_WARNING.format(groups="'staff'")]
        return
    assert result.exit_code == 3, result.stderr
    assert (
        "cannot check that the group(s) 'staff' exist: the token may not read them "
        "(read:groups:name), and a misspelt group would protect nobody; nothing was culled. "
        "Grant read:groups:name in the token's role, e.g. c.JupyterHub.load_roles = "
    ) in result.stderr
    assert "; or pass --allow-unchecked-groups to go on without the check" in result.stderr
    assert not _listed(emulated_hub)
    assert json.loads(result.stdout)["exit_status"] == 3


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        pytest.param({"status": 404}, None, id="no-such-endpoint"),
        pytest.param({"json": ["not", "a", "model"]}, HubProtocolError, id="not-an-object"),
        pytest.param(
            {"json": {"kind": "service", "name": "x", "scopes": []}},
            {"kind": "service", "name": "x", "scopes": []},
            id="a-model",
        ),
    ],
)
def test_token_owner_answers(answer: dict[str, object], outcome: object) -> None:
    with responses.RequestsMock() as mock:
        mock.get(f"{URL}/user", **answer)
        client = HubClient(URL, TOKEN)
        if isinstance(outcome, type):
            with pytest.raises(outcome):
                client.token_owner()
        else:
            assert client.token_owner() == outcome


@pytest.mark.parametrize(
    ("named", "listed", "suggestion"),
    [
        pytest.param(
            "instructor", ["instructors", "students"], " (did you mean 'instructors'?)", id="near"
        ),
        pytest.param("STAFF", ["staff"], " (did you mean 'staff'?)", id="case"),
        pytest.param("zzz", ["instructors"], "", id="nothing-near"),
    ],
)
def test_a_missing_group_names_the_nearest_one_when_the_token_may_list_groups(
    emulated_hub: EmulatedHub, named: str, listed: list[str], suggestion: str
) -> None:
    emulated_hub.missing_groups.add(named)
    emulated_hub.group_list = listed
    result = run("--dry-run", f"--exclude-group={named}")
    assert result.exit_code == 2, result.stderr
    assert (
        f"the hub has no such group: --exclude-group {named!r}{suggestion}; check the spelling"
        in result.stderr
    )


def test_without_list_groups_no_suggestion_is_attempted(emulated_hub: EmulatedHub) -> None:
    emulated_hub.token_scopes = [s for s in emulated_hub.token_scopes or [] if s != "list:groups"]
    emulated_hub.missing_groups.add("instructor")
    result = run("--dry-run", "--exclude-group=instructor")
    assert result.exit_code == 2
    assert not any((c.request.url or "").endswith("/groups") for c in emulated_hub.calls)


def test_group_list_answers() -> None:
    with responses.RequestsMock() as mock:
        client = HubClient(URL, TOKEN)
        mock.get(f"{URL}/groups", json={"items": [{"name": "a"}, {"nom": "b"}, "c"]})
        assert client.group_names() == ["a"]
        mock.replace(
            responses.GET,
            f"{URL}/groups",
            status=403,
            json={"status": 403, "message": "requires list:groups"},
        )
        assert client.group_names() is None
        mock.replace(responses.GET, f"{URL}/groups", json={"groups": 1})
        with pytest.raises(HubProtocolError):
            client.group_names()


def test_probing_needs_tokens_and_not_access_servers() -> None:
    """Issue 21: the culler mints each probed user a token; its own never reaches a server."""
    scopes = [need.scope for need in needed_scopes(CullLimits(), probe_kernels=True)]
    assert "tokens" in scopes
    assert "access:servers" not in scopes
    assert "tokens" not in [need.scope for need in needed_scopes(CullLimits())]


@pytest.mark.parametrize(
    ("version", "refused"),
    [
        pytest.param((2, 3, 1), True, id="2.3-ignores-token-scopes"),
        pytest.param((1, 5), True, id="1.5"),
        pytest.param((3, 0, 0), False, id="3.0"),
        pytest.param((6, 1, 1), False, id="6.1"),
        pytest.param((), False, id="unparsable-checked-per-token"),
    ],
)
def test_probing_is_refused_on_hubs_that_cannot_mint_confined_tokens(
    version: tuple[int, ...], refused: bool
) -> None:
    refusal = probing_refusal(version)
    assert (refusal is not None) is refused
    if refusal is not None:
        assert "--probe-kernels needs JupyterHub 3.0 or later" in refusal
