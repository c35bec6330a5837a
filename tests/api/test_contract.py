"""The REST API answers what its OpenAPI schema says, and absurd input is a 4xx, never a 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.receiver.harness import Running
from tests.receiver.otlp import agent_trace, to_protobuf

KEY = "contract-key-0123"


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _mismatch(value: Any, schema: dict[str, Any], spec: dict[str, Any], at: str = "") -> str | None:
    """Why ``value`` does not match the (OpenAPI 3.1 subset of) JSON schema, or None."""
    schema = _resolve(schema, spec)
    if "anyOf" in schema:
        reasons = [_mismatch(value, s, spec, at) for s in schema["anyOf"]]
        return None if None in reasons else f"{at}: matches no anyOf branch ({reasons})"
    kinds = {
        "object": dict,
        "array": list,
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "null": type(None),
    }
    kind = schema.get("type")
    if kind is not None and not isinstance(value, kinds[kind]):
        return f"{at}: {value!r} is not {kind}"
    if kind == "object":
        for name in schema.get("required", []):
            if name not in value:
                return f"{at}: missing {name!r}"
        for name, sub in schema.get("properties", {}).items():
            if name in value and (why := _mismatch(value[name], sub, spec, f"{at}.{name}")):
                return why
    if kind == "array":
        for i, item in enumerate(value):
            if why := _mismatch(item, schema.get("items", {}), spec, f"{at}[{i}]"):
                return why
    return None


def _check_documented(srv: Running, method: str, path: str, template: str, **kw: Any) -> int:
    spec = srv.http.get("/openapi.json").json()
    reply = srv.http.request(method, path, **kw)
    documented = spec["paths"][template][method.lower()]["responses"]
    status = str(reply.status_code)
    assert status in documented, f"{method} {path} answered {status}, not in {sorted(documented)}"
    content = documented[status].get("content", {}).get("application/json")
    if content is not None:
        why = _mismatch(reply.json(), content["schema"], spec)
        assert why is None, f"{method} {path} -> {status}: {why}"
    return reply.status_code


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # one schema for both databases
def test_every_error_answer_of_the_api_is_documented_and_matches_its_schema(
    serve: Callable[..., Running],
) -> None:
    trusted = serve()
    trusted.raw_export(to_protobuf(agent_trace("documented")).SerializeToString())
    run_paths = [
        ("GET", "/api/runs/{run_id}/errors"),
        ("GET", "/api/runs/{run_id}/errors/summary"),
        ("POST", "/api/runs/{run_id}/diagnose"),
        ("GET", "/api/runs/{run_id}/diagnostics"),
        ("GET", "/api/runs/{run_id}/diagnostics/latest"),
    ]
    seen = set()
    for method, template in [("GET", "/api/runs"), *run_paths]:
        path = template.replace("{run_id}", "documented")
        for headers in ({"x-tenant": "Not A Tenant!"}, {"x-tenant": "nobody-here"}):
            seen.add(_check_documented(trusted, method, path, template, headers=headers))
    for method, template in run_paths:
        path = template.replace("{run_id}", "no-such-run")
        seen.add(_check_documented(trusted, method, path, template))
    for params in ({"limit": 0}, {"since": "last tuesday"}, {"since": "99999999w"}):
        seen.add(_check_documented(trusted, "GET", "/api/runs", "/api/runs", params=params))
    keyed = serve(api_keys=f"alpha:{KEY}")
    seen.add(_check_documented(keyed, "GET", "/api/runs", "/api/runs"))
    assert seen == {400, 401, 404, 422}


def test_absurd_offsets_limits_and_look_backs_are_422_on_both_databases(
    serve: Callable[..., Running],
) -> None:
    srv = serve()
    srv.raw_export(to_protobuf(agent_trace("paged")).SerializeToString())
    absurd = [
        ("/api/runs", {"offset": 9223372036854775808}),
        ("/api/runs", {"offset": 2**63 - 1}),
        ("/api/runs", {"offset": -1}),
        ("/api/runs", {"limit": 10**12}),
        ("/api/runs", {"since": "99999999w"}),
        ("/api/runs/paged/errors", {"offset": 9223372036854775808}),
        ("/api/runs/paged/errors", {"limit": 2**40}),
    ]
    answers = {
        (path, str(params)): srv.http.get(path, params=params).status_code
        for path, params in absurd
    }
    assert set(answers.values()) == {422}, answers
    assert srv.http.get("/api/runs", params={"offset": 2**31 - 1}).json()["runs"] == []
