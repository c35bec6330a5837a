"""The MongoDB storage: ``mongodb://`` URLs, a database per tenant, through pymongo.

The sibling of :mod:`otel_diag.store.sql` behind the same port
(:mod:`otel_diag.store.port`): same ids (from :func:`otel_diag.projection.project.project`),
same typed rows, same rules. It is written for what both MongoDB and FerretDB (the
MongoDB wire-protocol server the tests run against) do alike: single-document atomic
updates, ``find`` with filters, sorts and projections, unique ``_id`` keys and plain
indexes. It needs no transactions, no aggregation operators beyond a ``$match`` and no
update pipelines (FerretDB v1.24 lacks them; the README lists what it lacks): idempotence
comes from deterministic ``_id`` values and ignored duplicate keys, writers of one trace
are serialized by lock documents, and aggregates are computed in Python from the stored
documents. This package is the only code that imports pymongo.
"""
