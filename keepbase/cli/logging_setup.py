"""Server log lines on stderr: text (default) or one JSON object per line (``--log-format json``)."""

from __future__ import annotations

import logging
import sys
import time

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
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "asyncio", "multipart"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
