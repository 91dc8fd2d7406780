"""Structured logs: JSON in production, readable in development, a request id on every line.

Never pass a password, code, token or secret to a logger: events carry identifiers only. Should
one slip through, fields are redacted by name (`idp.redaction`). Tracebacks never show local
variables, and each is written once.
"""

from __future__ import annotations

import contextlib
import json as json_module
import logging
import sys
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any

import structlog

from idp.redaction import redact_fields, redact_query

# Set on an exception the application has logged (with its request id): the server's own
# report of it is then left out, so that each traceback is written once.
_LOGGED = "_idp_logged"


def mark_logged(exc: BaseException) -> None:
    """Note that `exc` has been logged, so that the server does not log it again."""
    with contextlib.suppress(AttributeError):  # a type without attributes: logged twice
        setattr(exc, _LOGGED, True)


class _ServerReportFilter(logging.Filter):
    """Leaves out uvicorn's report of an exception the application has logged already."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not getattr(exc, _LOGGED, False)


_SERVER_REPORTS = _ServerReportFilter()


def configure_logging(*, json: bool, level: str = "INFO") -> None:
    """Our own loggers render straight to stderr (structlog's native path, which costs a third
    of a trip through the standard library's logging); other libraries' records go through a
    standard handler that renders them the same way."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_fields,
    ]
    # Tracebacks are plain: never the local variables of each frame (they hold requests with
    # their headers and cookies), and quick to write.
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    tracebacks: list[Any] = [structlog.processors.format_exc_info] if json else []
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    _ACCESS.update(json=json, enabled=numeric_level <= logging.INFO)
    structlog.configure(
        processors=[*shared, _name_key, *tracebacks, renderer],
        logger_factory=structlog.WriteLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        # Not cached: a reconfiguration (the CLI's, then the server's) reaches every logger.
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *tracebacks,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.error").addFilter(_SERVER_REPORTS)
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))
    # Access logs carry full URLs (codes in query strings): our own middleware logs requests.
    logging.getLogger("uvicorn.access").disabled = True


_ACCESS = {"json": False, "enabled": True}
_access_log = structlog.get_logger(logger_name="idp.http")


def log_request(request_id: str, method: str, path: str, status: int, duration_ms: float) -> None:
    """The one line each request logs. In JSON (production) it is rendered here, in one step,
    with the fields and their order that the processors give our other lines (its fields hold
    no secret; the path has its secret query parameters redacted all the same); otherwise it
    goes through the processors like any other line."""
    if not _ACCESS["json"]:
        _access_log.info(
            "request", method=method, path=path, status=status, duration_ms=duration_ms
        )
        return
    if not _ACCESS["enabled"]:
        return
    line = {
        "method": method,
        "path": redact_query(path),
        "status": status,
        "duration_ms": duration_ms,
        "event": "request",
        "request_id": request_id,
        "level": "info",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "logger": "idp.http",
    }
    sys.stderr.write(json_module.dumps(line) + "\n")


class _Stderr:
    """Whatever `sys.stderr` is at the time of writing (a server's, or a test's capture)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def get_logger(name: str) -> Any:
    """A logger that follows every later `configure_logging` (it binds nothing until used)."""
    return structlog.get_logger(logger_name=name)


def _name_key(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """`logger`, as the standard library's records have it."""
    if "logger_name" in event:
        event["logger"] = event.pop("logger_name")
    return event
