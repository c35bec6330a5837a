"""What otel-diag's own processes log: our lines, and other libraries' only when debugging.

``otel-diag serve`` and the CLI call :func:`configure_logging` once with their
``--log-level``. At any level above DEBUG the libraries that talk a lot at INFO (litellm,
which also attaches a handler of its own and so printed each line twice; httpx and the
OpenAI client, one line per request; alembic) are held to WARNING, and litellm's import is
made without its pydantic ``UserWarning`` screen (:func:`import_quietly`; pydantic's
``UserWarning`` about litellm's models while they are first used are filtered too); at
DEBUG they all speak. A diagnosis is then one INFO line (``otel_diag.diagnosis``).

Inside an application (the in-process exporter) otel-diag never configures logging: when it
imports litellm for an in-process diagnosis while the ``otel_diag`` logger is above DEBUG,
it holds litellm's loggers (not httpx's or the app's) to WARNING and ignores pydantic's
``ReadOnly`` notice about litellm's types (set ``otel_diag`` to DEBUG to see them).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import warnings
from types import ModuleType

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = ("debug", "info", "warning", "error")
OWN_HANDLER_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")
"""Loggers that carry a handler of their own (litellm's, which writes INFO and DEBUG to
stdout, where the CLI writes its ``--json``): in our own processes their records go through
the root handler instead, once, on stderr."""
CHATTY_LOGGERS = (*OWN_HANDLER_LOGGERS, "httpx", "httpcore", "openai", "alembic")
READONLY_NOTICE = r"Items? .* on TypedDict class .* (is|are) using the `ReadOnly` qualifier"


def parse_level(level: str | int) -> int:
    """``debug``/``info``/``warning``/``error`` (any case) or a number; else ``ValueError``."""
    if isinstance(level, int):
        return level
    value = logging.getLevelName(str(level).strip().upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r} (use one of {', '.join(LEVELS)})")
    return value


def debugging() -> bool:
    """Whether otel-diag's own logger is at DEBUG (then nobody is held back)."""
    return logging.getLogger("otel_diag").getEffectiveLevel() <= logging.DEBUG


_own_process = False
"""True once :func:`configure_logging` ran: this process is otel-diag's, not an app's."""


def quiet_libraries() -> None:
    """Hold the chatty libraries to WARNING unless otel-diag is debugging (idempotent).

    In otel-diag's own processes litellm's handlers are also removed, so its records reach
    stderr once, through the root handler; inside an application they are left alone.
    """
    debug = debugging()
    # Inside an application only litellm's loggers are ours to hold (httpx, openai and
    # alembic may be the app's own); in our processes all of them.
    for name in CHATTY_LOGGERS if _own_process else OWN_HANDLER_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)
    if not debug:
        # pydantic's notice about litellm's TypedDicts, raised when they are first used
        # (the first request), not at import: narrow enough to leave an app's own alone.
        warnings.filterwarnings("ignore", message=READONLY_NOTICE, category=UserWarning)
    if _own_process:
        for name in OWN_HANDLER_LOGGERS:
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True


ALEMBIC_LOGGERS = ("alembic.runtime.plugins", "alembic.runtime.migration")
"""What Alembic says at INFO whenever otel-diag checks or upgrades a schema (a line per
plugin it sets up, then the dialect): noise in an application's log, our doing."""


def hold_alembic() -> None:
    """Hold Alembic's per-check INFO lines to WARNING unless otel-diag is debugging (the
    store calls it before it uses Alembic, in serve, the CLI and inside applications)."""
    level = logging.DEBUG if debugging() else logging.WARNING
    for name in ALEMBIC_LOGGERS:
        logging.getLogger(name).setLevel(level)


def import_quietly(module: str) -> ModuleType:
    """Import ``module`` without the warnings its import raises (unless debugging); in
    otel-diag's own processes, what it prints while importing goes to stderr, never into
    the CLI's stdout."""
    with contextlib.ExitStack() as stack:
        if _own_process:
            stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        if not debugging():
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")
        return importlib.import_module(module)


def configure_logging(level: str | int) -> int:
    """Logging of an otel-diag process (serve, the CLI): one stderr handler on the root
    logger at ``level``, the chatty libraries held back above DEBUG. Returns the level."""
    global _own_process
    _own_process = True
    numeric = parse_level(level)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format=FORMAT)
    root.setLevel(numeric)
    logging.getLogger("otel_diag").setLevel(numeric)
    quiet_libraries()
    if numeric > logging.DEBUG:
        # pydantic warns about litellm's own models when it first builds their schemas
        # (during the first request, not only at import): not the operator's business.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"pydantic(\.|$)")
    logging.captureWarnings(True)  # any other warning is a log line with our format
    return numeric
