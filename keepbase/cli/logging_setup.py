"""Server log lines on stderr: text (default) or one JSON object per line (``--log-format json``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Iterator

import orjson

from ..core.config import Config


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                       + f".{int(record.msecs):03d}Z",
               "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return orjson.dumps(out).decode()


class CutOffRequests(logging.Filter):
    """uvicorn logs a request cancelled at the end of the shutdown grace period with a traceback of
    the cancellation; say it in one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError):
            record.msg, record.args = "a request was cut off at the end of the shutdown grace period", ()
            record.exc_info = record.exc_text = None
        return True


def configure_logging(cfg: Config, debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if cfg.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug or cfg.dev else logging.INFO)
    logging.getLogger("uvicorn.error").addFilter(CutOffRequests())
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "asyncio", "multipart"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextlib.contextmanager
def quiet_logs(debug: bool) -> Iterator[None]:
    """Only critical log lines meanwhile (all of them with ``debug``)."""
    root = logging.getLogger()
    level = root.level
    if not debug:
        root.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        root.setLevel(level)
