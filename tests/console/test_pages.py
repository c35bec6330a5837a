"""The console over plain HTTP: what a page refuses, what it answers to bad input, and the
headers that keep it safe (the browser tests show the same pages working)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.console.conftest import send
from tests.receiver.harness import Running
from tests.receiver.otlp import agent_trace


def _token(srv: Running) -> str:
    assert srv.http.get("/runs").status_code == 200
    token = srv.http.cookies.get("otel_diag_csrf")
    assert token
    return token


def _run_id(srv: Running) -> str:
    return str(srv.server.storage.tenant("default").runs()[0].id)


def test_diagnose_again_is_refused_cross_site_or_without_the_pages_token(
    serve: Callable[..., Running],
) -> None:
    srv = serve(diagnosis="rules")
    send(srv.http, agent_trace("r1"))
    rid, token = _run_id(srv), _token(srv)
    post = f"/runs/{rid}/diagnose"
    ours = {"origin": srv.http_url}
    refused = [
        ({"csrf_token": token}, {"origin": "http://evil.example"}),  # another site
        ({"csrf_token": token}, {"origin": "null"}),  # sandboxed frame, no referer
        ({"csrf_token": token}, {"referer": "http://evil.example/x"}),
        ({"csrf_token": "guessed"}, ours),  # our origin, wrong token
        ({}, ours),  # no token
    ]
    for form, headers in refused:
        answer = srv.http.post(post, data=form, headers=headers)
        assert answer.status_code == 403, (form, headers)
        assert "Refused" in answer.text
    store = srv.server.storage.tenant("default")
    assert store.reports(store.runs()[0].id) == []  # nothing was diagnosed

    answer = srv.http.post(post, data={"csrf_token": token}, headers=ours)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/runs/{rid}?notice=diagnosed#diagnosis"
    answer = srv.http.post(
        post, data={"csrf_token": token}, headers={"referer": f"{srv.http_url}/runs/{rid}"}
    )
    assert answer.status_code == 303  # a Referer from this server will do without Origin


def test_pages_carry_a_strict_content_security_policy_and_no_cache(
    serve: Callable[..., Running],
) -> None:
    srv = serve()
    send(srv.http, agent_trace("r1"))
    for path in ("/", "/runs", f"/runs/{_run_id(srv)}", "/errors", "/cost", "/agents"):
        answer = srv.http.get(path)
        assert answer.status_code == 200, path
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp, path
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["server-timing"].startswith("app;dur=")
        assert "<script>" not in answer.text and " style=" not in answer.text
    css = srv.http.get("/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert srv.http.get("/static/../pyproject.toml").status_code == 404
    assert srv.http.get("/static/nope.js").status_code == 404


def test_bad_query_values_fall_back_to_defaults_and_unknown_runs_are_404_pages(
    serve: Callable[..., Running],
) -> None:
    srv = serve()
    send(srv.http, agent_trace("r1"))
    for path in (
        "/runs?status=exploded&w=1y&sort=password&dir=sideways&p=-3",
        "/runs?p=99999999999999999999&q=%00%25_",
        "/errors?order=drop&w=&p=x",
        "/?w=forever",
        "/cost?w=0",
    ):
        answer = srv.http.get(path)
        assert answer.status_code == 200, (path, answer.text[:300])
    for ref in ("nope", "00000000-0000-0000-0000-000000000000", "%3Cscript%3E"):
        answer = srv.http.get(f"/runs/{ref}")
        assert answer.status_code == 404
        assert "<script>" not in answer.text
    # the API and OTLP paths are the API's, unchanged
    assert srv.http.get("/api/runs").json()["runs"]
    assert srv.http.get("/v1/traces").status_code == 405


def test_key_mode_login_sets_an_httponly_strict_cookie_and_logout_clears_it(
    serve: Callable[..., Running],
) -> None:
    srv = serve(api_keys="acme:key-acme-123")
    send(srv.http, agent_trace("r1"), key="key-acme-123")
    anon = httpx.Client(base_url=srv.http_url)
    assert anon.get("/runs").headers["location"] == "/login"
    assert anon.get("/runs", headers={"x-console-poll": "1"}).status_code == 401
    login = anon.get("/login")
    token = anon.cookies["otel_diag_csrf"]
    assert 'type="password"' in login.text
    ours = {"origin": srv.http_url}
    wrong = anon.post("/login", data={"key": "key-acme-999", "csrf_token": token}, headers=ours)
    assert wrong.status_code == 401 and "otel_diag_key" not in wrong.headers.get("set-cookie", "")
    cross = anon.post(
        "/login", data={"key": "key-acme-123", "csrf_token": token}, headers={"origin": "http://x"}
    )
    assert cross.status_code == 403
    ok = anon.post("/login", data={"key": "key-acme-123", "csrf_token": token}, headers=ours)
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"]
    assert "otel_diag_key=key-acme-123" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert anon.get("/runs").status_code == 200
    out = anon.post("/logout", data={"csrf_token": token}, headers=ours)
    assert out.status_code == 303 and anon.get("/runs").headers["location"] == "/login"
    anon.close()


def test_trusted_mode_picks_a_tenant_by_cookie_and_never_creates_one(
    serve: Callable[..., Running],
) -> None:
    srv = serve()
    send(srv.http, agent_trace("r1"), **{"tenant.id": "acme"})
    token = _token(srv)
    ours = {"origin": srv.http_url}
    assert "invoke_workflow demo" not in srv.http.get("/runs").text  # "default" is shown first
    srv.http.post("/tenant", data={"tenant": "made-up", "csrf_token": token}, headers=ours)
    for path in ("/", "/cost", "/agents"):
        assert "No data for tenant <strong>made-up" in srv.http.get(path).text
    assert "made-up" not in srv.server.storage.discover_tenants()
    srv.http.post("/tenant", data={"tenant": "acme", "csrf_token": token}, headers=ours)
    assert "invoke_workflow demo" in srv.http.get("/runs").text
    srv.http.post("/tenant", data={"tenant": "../etc", "csrf_token": token}, headers=ours)
    assert "invoke_workflow demo" in srv.http.get("/runs").text  # an invalid id changes nothing
