"""S3-compatible storage (AWS, MinIO, R2, ...) through boto3, configured from runtime settings."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, BinaryIO

from .storage import CHUNK, FileStat, check_key


class S3Storage:
    def __init__(self, settings: dict[str, Any], *, timeout: float | None = None, retries: int = 3) -> None:
        """``timeout``: connect and read timeout in seconds (botocore's 60 s when None);
        ``retries``: botocore's ``max_attempts`` (retries after the first try)."""
        import boto3  # type: ignore[import-untyped]
        from botocore.config import Config as BotoConfig  # type: ignore[import-untyped]

        self.bucket = str(settings.get("bucket") or "")
        style = "path" if settings.get("forcePathStyle") else "auto"
        self.client = boto3.client(
            "s3",
            endpoint_url=settings.get("endpoint") or None,
            region_name=settings.get("region") or None,
            aws_access_key_id=settings.get("accessKey") or None,
            aws_secret_access_key=settings.get("secret") or None,
            config=BotoConfig(s3={"addressing_style": style}, retries={"max_attempts": retries},
                              **({} if timeout is None else {"connect_timeout": timeout, "read_timeout": timeout})),
        )
        self._lock = threading.Lock()

    def _missing(self, exc: Exception) -> bool:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    def put(self, key: str, src: BinaryIO) -> None:
        self.client.upload_fileobj(src, self.bucket, check_key(key))

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=check_key(key), Body=data)

    def read(self, key: str) -> bytes:
        from botocore.exceptions import ClientError  # type: ignore[import-untyped]

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if self._missing(exc):
                raise FileNotFoundError(key) from exc
            raise
        return bytes(obj["Body"].read())

    def iter_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": check_key(key)}
        if start or end is not None:
            kwargs["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            obj = self.client.get_object(**kwargs)
        except ClientError as exc:
            if self._missing(exc):
                raise FileNotFoundError(key) from exc
            raise
        body = obj["Body"]
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def stat(self, key: str) -> FileStat | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if self._missing(exc):
                return None
            raise
        return FileStat(size=int(head["ContentLength"]), modified=head["LastModified"].timestamp())

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    def delete_prefix(self, prefix: str) -> None:
        keys = self.list(check_key(prefix, prefix=True).rstrip("/") + "/")
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i:i + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def list(self, prefix: str = "") -> list[str]:
        if prefix:
            prefix = check_key(prefix, prefix=True).rstrip("/") + "/"
        out: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            out.extend(str(item["Key"]) for item in page.get("Contents", []))
        return sorted(out)
