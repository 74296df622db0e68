"""Structured logs: one JSON object per line (or plain text), each carrying the request id and user id."""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from billing_api.observability import context

if TYPE_CHECKING:  # kept light: uvicorn's worker processes import this module before they answer health checks
    from billing_api.config import Settings

# Fields a log call may add with `extra=`; anything else (a request body, a password) is never written.
EXTRA_FIELDS = ("method", "route", "status", "duration_ms", "client")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class RequestContext(logging.Filter):
    """Stamps each record with the request it belongs to (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        state = context.current.get() or {}
        record.request_id = state.get("request_id")
        record.user_id = state.get("user_id")
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "user_id": getattr(record, "user_id", None),
        }
        for field in EXTRA_FIELDS:
            if hasattr(record, field):
                line[field] = getattr(record, field)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def logging_config(settings: Settings) -> dict[str, Any]:
    """A dictConfig for the app, `billing-api worker` and uvicorn (whose own access log is replaced by ours)."""
    formatter = {"()": f"{__name__}.JsonFormatter"} if settings.log_format == "json" else {"format": TEXT_FORMAT}
    handler = {"class": "logging.StreamHandler", "formatter": "default", "filters": ["request"],
               "stream": "ext://sys.stderr"}
    level = settings.log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request": {"()": f"{__name__}.RequestContext"}},
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


def configure(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings))
