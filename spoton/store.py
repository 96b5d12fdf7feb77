"""Object stores for sub-videos, calibration and the Parquet lake: a local folder or S3.

Keys are ``/``-separated paths relative to the store root, e.g.
``pets_s2l1/cam1/sub_video_01.mp4``. Writes are atomic: a temporary file renamed
into place locally, a single PUT on S3, so a reader never sees half an object.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Protocol

from spoton.errors import SpotOnError


class StoreError(SpotOnError):
    """A key is missing, malformed or escapes the store."""


# a file name holds 255 bytes on common file systems; writes first make '.{name}.XXXXXXXX.part'
MAX_KEY_PART_BYTES = 240


def _unnameable(parts: tuple[str, ...]) -> str | None:
    """Why no file system can name this key (so it must read as missing, not crash), or None."""
    try:
        sizes = [len(part.encode()) for part in parts]
    except UnicodeEncodeError:
        return "it is not valid Unicode text"
    if any("\x00" in part for part in parts):
        return "it holds a NUL byte"
    if max(sizes) > MAX_KEY_PART_BYTES:
        return f"a part is over {MAX_KEY_PART_BYTES} bytes"
    return None


def check_key(key: str) -> str:
    """Reject keys that could escape the store root (``..``, absolute paths, empty parts) or that
    no file system can name (a NUL byte, a lone surrogate, a part over 240 bytes)."""
    parts = PurePosixPath(key).parts
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in key:
        raise StoreError(f"invalid store key {key!r}: use a relative path like 'env/camera/file.mp4'")
    reason = _unnameable(parts)
    if reason:
        raise StoreError(f"invalid store key {key[:80]!r}: {reason}")
    return key


class ObjectStore(Protocol):
    def list_keys(self, prefix: str = "") -> list[str]: ...
    def exists(self, key: str) -> bool: ...
    def read_bytes(self, key: str) -> bytes: ...
    def write_bytes(self, key: str, data: bytes) -> None: ...
    def upload_file(self, path: Path, key: str) -> None: ...
    def local_path(self, key: str) -> Path: ...
    def delete(self, key: str) -> None: ...
    @property
    def uri(self) -> str: ...


class LocalStore:
    """A folder on disk. ``local_path`` is the file itself: no copy."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def uri(self) -> str:
        return self.root.as_uri()

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise StoreError(f"key {key!r} resolves outside the store")
        return path

    def list_keys(self, prefix: str = "") -> list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in base.rglob("*")
                      if p.is_file() and not p.name.endswith(".part"))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def read_bytes(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise StoreError(f"no object {key!r} in {self.root}")
        return path.read_bytes()

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".part",
                                         delete=False) as handle:
            handle.write(data)
        os.replace(handle.name, path)

    def upload_file(self, path: Path, key: str) -> None:
        """Copy in chunks (uploads can be large), atomically like ``write_bytes``."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "rb") as source, tempfile.NamedTemporaryFile(
                dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False) as handle:
            shutil.copyfileobj(source, handle, 1024 * 1024)
        os.replace(handle.name, target)

    def local_path(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise StoreError(f"no object {key!r} in {self.root}")
        return path

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Store:
    """An S3 bucket (any S3-compatible server: AWS, SeaweedFS, ...) through a boto3 client.

    ``local_path`` downloads into a cache folder (videos must be files for the
    decoder) and re-uses the copy while its size and ETag are unchanged.
    """

    def __init__(self, client, bucket: str, prefix: str = "", cache_dir: Path | None = None):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.cache_dir = Path(cache_dir or Path(tempfile.gettempdir()) / "spoton-s3-cache") / bucket

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)

    def list_keys(self, prefix: str = "") -> list[str]:
        full = self._key(prefix) if prefix else self.prefix
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            for item in page.get("Contents", []):
                key = item["Key"][len(self.prefix) + 1:] if self.prefix else item["Key"]
                keys.append(key)
        return sorted(keys)

    def _head(self, key: str) -> dict | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def read_bytes(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as error:
            raise StoreError(f"no object {key!r} in {self.uri}: {error}") from None

    def write_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def upload_file(self, path: Path, key: str) -> None:
        self.client.upload_file(str(path), self.bucket, self._key(key))

    def local_path(self, key: str) -> Path:
        head = self._head(key)
        if head is None:
            raise StoreError(f"no object {key!r} in {self.uri}")
        etag = head.get("ETag", "").strip('"') or str(head.get("ContentLength"))
        path = self.cache_dir / self._key(key)
        stamp = path.with_name(path.name + ".etag")
        if path.is_file() and stamp.is_file() and stamp.read_text() == etag:
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        self.client.download_file(self.bucket, self._key(key), str(tmp))
        os.replace(tmp, path)
        stamp.write_text(etag)
        return path

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
