"""Fixtures for receiver tests: ``serve`` starts a real server on the test's database."""

from tests.receiver.harness import serve

__all__ = ["serve"]
