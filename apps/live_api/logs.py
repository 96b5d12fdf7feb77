"""Logging for the live API: one formatter (structlog) for structlog and stdlib records alike.

``SPOTON_LOG_FORMAT=json`` writes one JSON object per line (``timestamp``, ``level``, ``logger``,
``event``, plus the bound context); ``console`` (the default) the same fields for humans. The
context comes from ``structlog.contextvars``: ``request_id`` on every line written while a
request is served (bound by ``observe.RequestObservation``), ``session_id`` on every line of a
session's thread and of its sources' reader threads. uvicorn's and the project's stdlib
loggers propagate to the root handler set here, so they get the same format and context.
Nothing here logs headers or query strings.
"""
from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

from spoton.redact import redact

LOG_FORMATS = ("console", "json")


def _redact_rendered(_logger, _method: str, line: str) -> str:
    """The last step: camera passwords and ``token=`` values out of the whole line, tracebacks
    included (structlog formats exceptions itself, past the record factory's redaction)."""
    return redact(line)


def configure_logging(fmt: str = "console", level: int | str = logging.INFO,
                      stream: TextIO | None = None) -> logging.Handler:
    """Route every log record through one structlog formatter; returns the root handler it set."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"SPOTON_LOG_FORMAT={fmt!r}: use one of {', '.join(LOG_FORMATS)}")
    shared = [structlog.contextvars.merge_contextvars, structlog.stdlib.add_log_level,
              structlog.stdlib.add_logger_name, structlog.processors.TimeStamper(fmt="iso", utc=True)]
    if fmt == "json":
        render = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        # plain tracebacks: Rich's (the default when installed) print local variables, tokens included
        render = [structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render, _redact_rendered])
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    structlog.configure(processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
                        logger_factory=structlog.stdlib.LoggerFactory(),
                        wrapper_class=structlog.stdlib.BoundLogger, cache_logger_on_first_use=True)
    return handler
