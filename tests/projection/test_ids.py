"""Deterministic ids: the fast name UUID is exactly ``uuid.uuid5`` (stored ids never change)."""

from __future__ import annotations

import random
import uuid

from otel_diag.projection.ids import NAMESPACE, error_uuid, name_uuid, run_uuid, step_uuid


def test_name_uuid_is_uuid5_in_value_hash_text_and_version() -> None:
    rng = random.Random(5)
    names = ["", "x", "é" * 40, "\U0001f600 run", *(rng.randbytes(24).hex() for _ in range(500))]
    for name in names:
        fast, slow = name_uuid(name), uuid.uuid5(NAMESPACE, name)
        assert fast == slow and hash(fast) == hash(slow)
        assert str(fast) == str(slow) and fast.bytes == slow.bytes
        assert fast.version == 5 and fast.variant == uuid.RFC_4122
        assert {fast: 1}[slow] == 1


def test_row_ids_are_the_uuid5_values_already_stored() -> None:
    trace, span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    assert step_uuid(trace, span) == uuid.uuid5(NAMESPACE, trace + span)
    assert error_uuid(trace, span, 2) == uuid.uuid5(NAMESPACE, f"{trace}{span}:2")
    assert run_uuid("nightly-job", trace) == uuid.uuid5(NAMESPACE, "nightly-job")
    assert run_uuid(None, trace) == uuid.UUID(hex=trace)
