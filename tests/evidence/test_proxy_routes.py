"""``proxy_routes``: where a probe goes (``--probe-via``), and the proxy's routing table.

A user's token must only go where the proxy would have forwarded it anyway: to the
target of the route JupyterHub wrote for that very server. Every other case is a
``NoAddress`` with a reason, and nothing is sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
import responses

from idle_cull.errors import HubError
from idle_cull.evidence.keep_alive import KeepAliveReader
from idle_cull.evidence.kernel_api import KernelProbe
from idle_cull.evidence.probe_tokens import ProbeTarget
from idle_cull.evidence.proxy_routes import (
    NoAddress,
    Route,
    RoutesUnavailable,
    RouteTargets,
    fetch_routes,
    read_routes,
    route_locator,
    through_proxy,
)
from idle_cull.evidence.server_activity import ServerActivityProbe

PROXY = "http://proxy.test:8000"
PROXY_API = "http://proxy-api.test:8001"
CHP_TOKEN = "chp-secret-0123456789abcdef"
TARGET = "http://10.0.0.5:8888"
NESTED = b"[" * 40_000 + b"]" * 40_000


def at(url: str | None, user: str = "ann", server: str = "") -> ProbeTarget:
    return ProbeTarget(user, server, url, frozenset({server}))


def no_token() -> str:
    raise AssertionError("a token was asked for a server that is not probed")


@pytest.fixture
def net() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


# --- through the proxy ---------------------------------------------------------------------


def test_through_the_proxy_a_server_is_under_its_own_path() -> None:
    locate = through_proxy(PROXY + "/")
    assert locate.proxy_url == PROXY
    assert locate(at("/user/ann/")) == f"{PROXY}/user/ann/"
    assert locate(at("/user/ann/gpu/", server="gpu")) == f"{PROXY}/user/ann/gpu/"
    assert locate(at("/user/ann")) == f"{PROXY}/user/ann/"


@pytest.mark.parametrize(
    "url",
    [
        "//evil.test/",
        "/user/ann/?x=1",
        "/user/ann/#top",
        "user/ann/",
        "http://evil.test/user/ann/",
        "@evil.test/user/ann/",
        "",
        None,
    ],
)
def test_through_the_proxy_a_url_that_is_not_a_plain_path_has_no_address(url: str | None) -> None:
    found = through_proxy(PROXY)(at(url))
    assert isinstance(found, NoAddress)
    assert "no usable server url" in found.reason


# --- the routing table ---------------------------------------------------------------------


def test_routes_keep_whose_server_jupyterhub_said_each_is() -> None:
    body = json.dumps(
        {
            "/": {"hub": True, "jupyterhub": True, "target": "http://127.0.0.1:8081"},
            "/user/ann": {"user": "ann", "server_name": "", "target": TARGET},
            "/user/ann/gpu/": {"user": "ann", "server_name": "gpu", "target": TARGET},
            "/user/eve": "not a route",
            "/user/fay": {"user": "fay"},
        }
    ).encode()
    assert read_routes(body) == {
        "/": Route("http://127.0.0.1:8081"),
        "/user/ann/": Route(TARGET, "ann", ""),
        "/user/ann/gpu/": Route(TARGET, "ann", "gpu"),
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"[]", "not a JSON object", id="list"),
        pytest.param(b"<html>", "not JSON", id="html"),
        pytest.param(NESTED, "not JSON", id="nested"),
        pytest.param(b'{"version": "5.0.0"}', "no route with a target", id="not-chp"),
    ],
)
def test_a_routing_table_that_is_not_one_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(RoutesUnavailable, match=message):
        read_routes(body)


def test_an_empty_routing_table_is_one() -> None:
    assert read_routes(b"{}") == {}


# --- at the route targets ------------------------------------------------------------------

ROUTES = {
    "/user/ann/": Route(TARGET, "ann", ""),
    "/user/ann/gpu/": Route("http://10.0.0.6:8888", "ann", "gpu"),
    "/user/bob/": Route("http://10.0.0.7:8888", "mallory", ""),
    "/user/cid/": Route("http://10.0.0.8:8888", "cid", "lab"),
    "/user/dan/": Route("http://10.0.0.9:8888"),
    "/user/eve/": Route("https://10.0.0.10:8888", "eve", ""),
    "/user/fay/": Route("http://10.0.0.11:8888/somewhere", "fay", ""),
    "/user/gus/": Route("ftp://10.0.0.12", "gus", ""),
    "/user/hal/": Route("http://10.0.0.13:99999", "hal", ""),
    "/user/ida/": Route("http://someone:pw@10.0.0.14", "ida", ""),
}


def test_at_the_route_target_a_server_keeps_its_path() -> None:
    locate = route_locator(ROUTES)
    assert locate.proxy_url is None  # straight to the server: no proxy in between
    assert locate(at("/user/ann/")) == f"{TARGET}/user/ann/"
    assert locate(at("/user/ann/gpu", server="gpu")) == "http://10.0.0.6:8888/user/ann/gpu/"


@pytest.mark.parametrize(
    ("user", "server", "reason"),
    [
        pytest.param("zed", "", "no route for /user/zed/", id="no-route"),
        pytest.param("bob", "", "names another server", id="another-user"),
        pytest.param("cid", "", "names another server", id="another-server-name"),
        pytest.param("dan", "", "names no server", id="not-jupyterhubs"),
        pytest.param("eve", "", "https (internal_ssl)", id="https"),
        pytest.param("fay", "", "not a plain origin", id="path"),
        pytest.param("gus", "", "not an http URL", id="ftp"),
        pytest.param("hal", "", "not a URL", id="bad-port"),
        pytest.param("ida", "", "not a plain origin", id="credentials"),
    ],
)
def test_a_server_whose_route_is_not_its_own_plain_http_one_has_no_address(
    user: str, server: str, reason: str
) -> None:
    found = route_locator(ROUTES)(at(f"/user/{user}/", user=user, server=server))
    assert isinstance(found, NoAddress)
    assert reason in found.reason


def test_the_route_of_anothers_server_is_not_used_even_under_the_same_user() -> None:
    """``/user/ann/`` routed to ann's server ``gpu`` is not ann's default server."""
    routes = {"/user/ann/": Route(TARGET, "ann", "gpu")}
    assert isinstance(route_locator(routes)(at("/user/ann/")), NoAddress)


def test_before_the_table_is_read_no_server_has_an_address() -> None:
    found = RouteTargets(PROXY_API, CHP_TOKEN)(at("/user/ann/"))
    assert found == NoAddress("the proxy's routing table was not read")


def test_a_route_naming_another_user_gets_no_request_and_the_probe_falls_back(
    net: responses.RequestsMock,
) -> None:
    """Whatever the target: the user's token never goes there, and no request at all."""
    net.add(
        responses.GET,
        f"{PROXY_API}/api/routes",
        json={"/user/ann": {"user": "bob", "server_name": "", "target": TARGET}},
    )
    locate = RouteTargets(PROXY_API, CHP_TOKEN)
    assert locate.load() == 1
    reader = ServerActivityProbe(locate)
    kernels = KernelProbe(locate)
    keep_alive = KeepAliveReader(locate)
    try:
        activity = reader.probe(at("/user/ann/"), no_token)
        assert activity.failed
        assert "names another server" in str(activity.failure)
        assert activity.attempts == 0
        result = kernels.probe(at("/user/ann/"), no_token)
        assert "names another server" in str(result.failure)
        reading = keep_alive.read(at("/user/ann/"), no_token)
        assert reading.file is None
        assert "names another server" in reading.reason
        assert [call.request.url for call in net.calls] == [f"{PROXY_API}/api/routes"]
    finally:
        reader.close()
        kernels.close()
        keep_alive.close()


def test_a_server_without_a_route_gets_no_request_and_the_probe_falls_back(
    net: responses.RequestsMock,
) -> None:
    net.add(responses.GET, f"{PROXY_API}/api/routes", json={"/": {"target": "http://hub:8081"}})
    locate = RouteTargets(PROXY_API, CHP_TOKEN)
    locate.load()
    reader = ServerActivityProbe(locate)
    try:
        activity = reader.probe(at("/user/ann/"), no_token)
    finally:
        reader.close()
    assert activity.failure == "the proxy has no route for /user/ann/"
    assert len(net.calls) == 1


def test_a_server_is_probed_at_its_target_with_no_track_activity(
    net: responses.RequestsMock,
) -> None:
    net.add(
        responses.GET,
        f"{PROXY_API}/api/routes",
        json={"/user/ann": {"user": "ann", "server_name": "", "target": TARGET}},
    )
    net.add(responses.GET, f"{TARGET}/user/ann/api/kernels", json=[])
    net.add(responses.GET, f"{TARGET}/user/ann/api/terminals", json=[])
    locate = RouteTargets(PROXY_API, CHP_TOKEN)
    locate.load()
    reader = ServerActivityProbe(locate)
    try:
        activity = reader.probe(at("/user/ann/"), lambda: "users-own-token")
    finally:
        reader.close()
    assert activity.failure is None
    routes_call, *probes = net.calls
    assert routes_call.request.headers["Authorization"] == f"token {CHP_TOKEN}"
    assert len(probes) == 2
    for call in probes:
        assert str(call.request.url).endswith("?no_track_activity=1")
        assert call.request.headers["Authorization"] == "token users-own-token"  # never CHP's


# --- reading the table ---------------------------------------------------------------------


def test_the_routes_are_read_with_the_proxys_token_sent_there_only(
    net: responses.RequestsMock,
) -> None:
    net.add(responses.GET, f"{PROXY_API}/api/routes", json={"/user/ann": {"target": TARGET}})
    assert fetch_routes(PROXY_API + "/", CHP_TOKEN) == {"/user/ann/": Route(TARGET)}
    (call,) = net.calls
    assert call.request.headers["Authorization"] == f"token {CHP_TOKEN}"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        pytest.param({"status": 403, "json": {}}, "refused the token \\(HTTP 403\\)", id="403"),
        pytest.param({"status": 401, "json": {}}, "refused the token \\(HTTP 401\\)", id="401"),
        pytest.param({"status": 404, "body": b"nope"}, "answered HTTP 404", id="404"),
        pytest.param(
            {"status": 302, "headers": {"Location": "http://elsewhere.test/"}},
            "answered HTTP 302",
            id="redirect-not-followed",
        ),
        pytest.param({"body": requests.ConnectionError("x")}, "ConnectionError", id="down"),
        pytest.param({"body": requests.Timeout("x")}, "Timeout", id="timeout"),
        pytest.param({"body": b"<html>"}, "not JSON", id="html"),
    ],
)
def test_routes_that_cannot_be_read_say_what_to_check(
    net: responses.RequestsMock, answer: dict[str, object], message: str
) -> None:
    net.add(responses.GET, f"{PROXY_API}/api/routes", **answer)  # type: ignore[arg-type]
    with pytest.raises(RoutesUnavailable, match=message) as raised:
        fetch_routes(PROXY_API, CHP_TOKEN)
    assert CHP_TOKEN not in str(raised.value)
    assert "\n" not in str(raised.value)
    assert isinstance(raised.value, HubError)  # exit 3, as for the hub itself
    assert len(net.calls) == 1  # no retry, no redirect followed
