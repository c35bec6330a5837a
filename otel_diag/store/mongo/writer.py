"""Writes of projected spans: steps and failures inserted by id, runs merged, without
transactions.

The order is the SQL writer's (:mod:`otel_diag.store.sql.writer`), so the result is the
same row for row: named traces are recorded in ``trace_runs`` (runs that were keyed by
their trace id merged into the named run), steps inserted, the batch's errors settled
against what their traces already recorded (:mod:`otel_diag.store.settlement`), failures
inserted, runs merged last. Inserts are ``insert_many(ordered=False)`` with deterministic
``_id`` values, and duplicate keys are ignored: a re-sent span adds nothing.

Run documents are merged in Python (FerretDB has no update pipelines to write the SQL's
``CASE`` merge as one update), which is safe because writers of one run take turns
(:mod:`otel_diag.store.mongo.locks`). When every step and error of the batch was new the
batch's counts are added to the run; otherwise (a re-send, a merge, a settled copy) the
run's counts are recomputed from its stored documents, so they are exact either way. A
process that dies between the inserts and the run update leaves counts short until the
collector re-sends the batch (it got no success answer), which recomputes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from otel_diag.projection.ids import placeholder_runs
from otel_diag.projection.project import Projection
from otel_diag.rows import DiagnosisState, run_status
from otel_diag.store.mongo.codec import from_us, to_doc, with_changes
from otel_diag.store.settlement import SHARED, plan

PENDING = DiagnosisState.PENDING.value
COUNTS = (
    "step_count",
    "llm_calls",
    "tool_calls",
    "input_tokens",
    "output_tokens",
    "unpriced_tokens",
    "error_count",
)
STEP_FIELDS = {"run_id": 1, "kind": 1, "input_tokens": 1, "output_tokens": 1, "cost_usd": 1}
STEP_FIELDS["cost_source"] = 1
DUPLICATE_KEY = 11000


def insert_ignore(collection: Collection[dict[str, Any]], docs: Sequence[dict[str, Any]]) -> int:
    """Insert ``docs``, skipping ``_id`` values that exist; returns how many were new."""
    return len(docs) - len(insert_new(collection, docs))


def insert_new(collection: Collection[dict[str, Any]], docs: Sequence[dict[str, Any]]) -> set[Any]:
    """Insert ``docs``; returns the ``_id`` values that already existed (not inserted)."""
    if not docs:
        return set()
    try:
        collection.insert_many(list(docs), ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", ())
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return {docs[e["index"]]["_id"] for e in errors}
    return set()


BY_ID_MAX = 1
"""A single key is read with ``find_one``, more with one ``$in`` query: MongoDB answers both
from the ``_id`` index, and FerretDB's SQLite handler scans the collection for either (one
scan beats one per key)."""


def by_id(collection: Collection[dict[str, Any]], ids: Sequence[Any]) -> dict[Any, dict[str, Any]]:
    """The documents with these ``_id`` values, by ``_id``."""
    if len(ids) <= BY_ID_MAX:
        found = (collection.find_one({"_id": i}) for i in ids)
        return {d["_id"]: d for d in found if d is not None}
    return {d["_id"]: d for d in collection.find({"_id": {"$in": list(ids)}})}


def set_each(
    collection: Collection[dict[str, Any]], changes: Sequence[tuple[Any, dict[str, Any]]]
) -> None:
    """``$set`` each document's changes by ``_id``, one ``update`` command per document.

    Not ``bulk_write``: FerretDB v1.24 stopped answering an ordered update command of 100
    statements (40 went through); one statement per command never hung.
    """
    for doc_id, values in changes:
        collection.update_one({"_id": doc_id}, {"$set": values})


def zero_counts() -> dict[str, Any]:
    return {**dict.fromkeys(COUNTS, 0), "cost_usd": None}


def add_step(counts: dict[str, Any], step: Mapping[str, Any]) -> None:
    """Fold one step document into its run's counts (the one copy of what a step adds)."""
    counts["step_count"] += 1
    kind = step.get("kind")
    if kind == "llm":
        counts["llm_calls"] += 1
    elif kind == "tool":
        counts["tool_calls"] += 1
    inp, out = step.get("input_tokens") or 0, step.get("output_tokens") or 0
    counts["input_tokens"] += inp
    counts["output_tokens"] += out
    if step.get("cost_usd") is not None:
        counts["cost_usd"] = (counts["cost_usd"] or 0.0) + step["cost_usd"]
    if step.get("cost_source") == "unpriced":
        counts["unpriced_tokens"] += inp + out


def batch_counts(
    steps: Iterable[Mapping[str, Any]], errors: Iterable[Mapping[str, Any]]
) -> dict[uuid.UUID, dict[str, Any]]:
    out: dict[uuid.UUID, dict[str, Any]] = {}
    for step in steps:
        add_step(out.setdefault(step["run_id"], zero_counts()), step)
    for error in errors:
        out.setdefault(error["run_id"], zero_counts())["error_count"] += 1
    return out


def _merged(old: Mapping[str, Any], ex: Mapping[str, Any]) -> dict[str, Any]:
    """What a stored run becomes with a batch's run update ``ex`` (documents, times in µs).

    The SQL writer's upsert rules: earliest start, latest end, the latest root decides
    the outcome, a root names the run and its trace, the first agent seen stays.
    """
    root_seen = bool(old.get("root_seen")) or bool(ex["root_seen"])
    if ex["root_seen"] and (not old.get("root_seen") or ex["ended_at"] >= old["ended_at"]):
        root_failed = bool(ex["root_failed"])
    else:
        root_failed = bool(old.get("root_failed"))
    if ex["root_seen"] and ex["service_name"] is not None:
        service = ex["service_name"]
    else:
        service = old.get("service_name") or ex["service_name"]
    ended = [v for v in (old.get("ended_at"), ex["ended_at"]) if v is not None]
    return {
        "started_at": min(old["started_at"], ex["started_at"]),
        "ended_at": max(ended) if ended else None,
        "name": ex["name"] if ex["root_seen"] else (old.get("name") or ex["name"]),
        "trace_id": ex["trace_id"] if ex["root_seen"] else old["trace_id"],
        "service_name": service,
        "agent_name": old.get("agent_name") or ex["agent_name"],
        "root_seen": root_seen,
        "root_failed": root_failed,
    }


def upsert_runs(
    db: Database[dict[str, Any]],
    updates: Mapping[uuid.UUID, Any],
    now_us: int,
    deltas: Mapping[uuid.UUID, dict[str, Any]] | None,
) -> None:
    """Merge the batch's run updates into the stored runs; ``deltas`` (counts of rows known
    to be new) are added, None leaves the counts to :func:`refresh_counts`."""
    ids = sorted(updates)
    stored = by_id(db.runs, ids)
    ops = []
    inserts = []
    for run_id in ids:
        ex = to_doc(updates[run_id])
        ex.pop("_root_end", None)
        delta = (deltas or {}).get(run_id) or zero_counts()
        old = stored.get(run_id)
        if old is None:
            doc = {
                **ex,
                **delta,
                "last_span_at": now_us,
                "diagnosis_state": PENDING if delta["error_count"] else None,
                "diagnosis_fingerprint": None,
                "diagnosis_claimed_at": None,
                "diagnosis_claimed_by": None,
                "diagnosed_at": None,
            }
            doc["status"] = run_status(doc["root_seen"], doc["root_failed"], delta["error_count"])
            doc["status"] = doc["status"].value
            inserts.append(doc)  # an insert: FerretDB scans its collection for an upsert
            continue
        new = _merged(old, ex)
        new["last_span_at"] = now_us
        for column in COUNTS:
            new[column] = int(old.get(column) or 0) + delta[column]
        if delta["cost_usd"] is not None:
            new["cost_usd"] = (old.get("cost_usd") or 0.0) + delta["cost_usd"]
        if delta["error_count"] > 0:  # new errors re-open a diagnosed run
            new["diagnosis_state"] = PENDING
        new["status"] = run_status(new["root_seen"], new["root_failed"], new["error_count"]).value
        ops.append((run_id, new))
    set_each(db.runs, ops)
    existed = insert_new(db.runs, inserts)
    if existed:  # only a writer whose locks expired meanwhile gets here: merge instead
        again = {r: updates[r] for r in existed}
        upsert_runs(db, again, now_us, {r: (deltas or {}).get(r) or zero_counts() for r in again})


def refresh_counts(db: Database[dict[str, Any]], run_ids: Sequence[uuid.UUID]) -> None:
    """Recompute counts, tokens, cost, error count and status of ``run_ids`` from the
    stored steps and failures (a re-send, a merge or a settlement happened)."""
    if not run_ids:
        return
    ids = list(run_ids)
    counts = {r: zero_counts() for r in ids}
    for step in db.steps.find({"run_id": {"$in": ids}}, STEP_FIELDS):
        add_step(counts[step["run_id"]], step)
    for error in db.error_logs.find({"run_id": {"$in": ids}}, {"run_id": 1}):
        counts[error["run_id"]]["error_count"] += 1
    ops = []
    for run in db.runs.find({"_id": {"$in": ids}}):
        new = dict(counts[run["_id"]])
        errors = new["error_count"]
        if errors and errors != run.get("error_count"):
            new["diagnosis_state"] = PENDING  # new errors re-open a diagnosed run
        new["status"] = run_status(
            bool(run.get("root_seen")), bool(run.get("root_failed")), errors
        ).value
        ops.append((run["_id"], new))
    set_each(db.runs, ops)


def lookup_trace_runs(
    db: Database[dict[str, Any]], trace_ids: Iterable[str]
) -> dict[str, uuid.UUID]:
    """Named runs already stored for these traces (spans without a run id join them)."""
    wanted = sorted(set(trace_ids))
    return {t: d["run_id"] for t, d in by_id(db.trace_runs, wanted).items()}


def merge_placeholder_runs(
    db: Database[dict[str, Any]], named: Mapping[str, uuid.UUID]
) -> list[uuid.UUID]:
    """Fold runs keyed by a trace id into the named run their trace turned out to have.

    Step and error ids do not depend on the run, so moving them is exact. Returns the run
    ids merged away.
    """
    placeholders = placeholder_runs(named)
    if not placeholders:
        return []
    merged = []
    for old in by_id(db.runs, sorted(placeholders)).values():
        new = placeholders[old["_id"]]
        db.steps.update_many({"run_id": old["_id"]}, {"$set": {"run_id": new}})
        db.error_logs.update_many({"run_id": old["_id"]}, {"$set": {"run_id": new}})
        update = {
            "id": new,
            **{k: old.get(k) for k in ("trace_id", "name", "service_name", "agent_name")},
            "started_at": from_us(old["started_at"]),
            "ended_at": from_us(old["ended_at"]) if old.get("ended_at") is not None else None,
            "root_seen": bool(old.get("root_seen")),
            "root_failed": bool(old.get("root_failed")),
        }
        upsert_runs(db, {new: update}, int(old["last_span_at"]), None)
        db.runs.delete_one({"_id": old["_id"]})
        merged.append(old["_id"])
    return merged


def _stored(
    collection: Collection[dict[str, Any]], extra: str, trace_ids: list[str]
) -> list[dict[str, Any]]:
    fields = {c: 1 for c in (*SHARED, "created_at", extra)}
    out = []
    for doc in collection.find({"trace_id": {"$in": trace_ids}}, fields):
        row = {c: doc.get(c) for c in (*SHARED, extra)}
        row["id"] = doc["_id"]
        row["created_at"] = from_us(doc["created_at"])
        out.append(row)
    return out


def settle_propagation(db: Database[dict[str, Any]], proj: Projection) -> bool:
    """Keep only new failures in ``proj.errors``; True if stored documents changed."""
    if not proj.errors:
        return False
    trace_ids = sorted({_trace(e) for e in proj.errors})
    # Only traces that stored an error before can hold one (an _id lookup each, not a scan).
    known = sorted(by_id(db.error_traces, trace_ids))
    settled = plan(
        proj.errors,
        _stored(db.error_logs, "propagated_to", known) if known else [],
        _stored(db.error_propagations, "origin_id", known) if known else [],
        proj.parents,
        _with_names,
    )
    insert_ignore(db.error_traces, [{"_id": t} for t in trace_ids if t not in known])
    proj.errors = settled.kept
    if settled.moved:
        db.error_logs.delete_many({"_id": {"$in": settled.moved}})
    if settled.new_copies:
        copies = [to_doc(settled.new_copies[k]) for k in sorted(settled.new_copies, key=_bytes)]
        insert_ignore(db.error_propagations, copies)
    set_each(db.error_logs, [(i, {"propagated_to": n}) for i, n in settled.renamed])
    set_each(db.error_propagations, [(i, {"origin_id": o}) for i, o in settled.relinked])
    return settled.changed_stored


def _trace(error: Any) -> str:
    return str(error["trace_id"] if isinstance(error, Mapping) else error.trace_id)


def _with_names(error: Any, names: list[str] | None) -> Any:
    if isinstance(error, dict):
        return with_changes(error, propagated_to=names)
    return with_changes(error, propagated_to=tuple(names) if names else None)


def _bytes(value: uuid.UUID) -> bytes:
    return value.bytes


def write_projection(
    db: Database[dict[str, Any]],
    proj: Projection,
    now_us: int,
    named_trace_runs: Mapping[str, uuid.UUID] | None = None,
) -> None:
    """Write one projection (the caller holds the locks of its traces and runs)."""
    run_ids = sorted(proj.runs)
    if not run_ids:
        return
    merged: list[uuid.UUID] = []
    if named_trace_runs:
        insert_ignore(
            db.trace_runs, [{"_id": t, "run_id": r} for t, r in sorted(named_trace_runs.items())]
        )
        merged = merge_placeholder_runs(db, named_trace_runs)
    step_docs = [to_doc(s) for s in proj.steps]
    new_steps = insert_ignore(db.steps, step_docs)
    settled = settle_propagation(db, proj)
    error_docs = [to_doc(e) for e in proj.errors]
    new_errors = insert_ignore(db.error_logs, error_docs)
    exact = (
        not merged and not settled and new_steps == len(step_docs) and new_errors == len(error_docs)
    )
    upsert_runs(db, proj.runs, now_us, batch_counts(step_docs, error_docs) if exact else None)
    if not exact:
        refresh_counts(db, run_ids)
