"""Object stores for sub-videos, calibration and the Parquet lake: a local folder or S3.

Keys are ``/``-separated paths relative to the store root, e.g.
``pets_s2l1/cam1/sub_video_01.mp4``. Writes are atomic: a temporary file renamed
into place locally (removed again when the write fails, e.g. on a full disk), a single PUT
on S3 (or, for large files, a multipart upload, which S3 shows only once it completes), so
a reader never sees half an object.

S3 calls go through a client made by :func:`s3_client`: retries with exponential backoff
(botocore "standard" or "adaptive" mode) and connect/read timeouts, so an S3 server that
restarts for a few seconds delays a call instead of failing it, and a dead one fails it
within a bounded time rather than hanging.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Iterator, Protocol

from spoton.errors import SpotOnError


class StoreError(SpotOnError):
    """A key is missing, malformed or escapes the store."""


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


# a file name holds 255 bytes on common file systems; writes first make '.{name}.XXXXXXXX.part'
MAX_KEY_PART_BYTES = 240


def _unnameable(parts: tuple[str, ...]) -> str | None:
    """Why no file system can name this key (so it must read as missing, not crash), or None."""
    try:
        sizes = [len(part.encode()) for part in parts]
    except UnicodeEncodeError:
        return "it is not valid Unicode text"
    if max(sizes) > MAX_KEY_PART_BYTES:
        return f"a part is over {MAX_KEY_PART_BYTES} bytes"
    return None


def check_key(key: str) -> str:
    """Reject keys that could escape the store root (``..``, absolute paths, empty parts) or that
    no file system can name (NUL and other control characters, a lone surrogate, a part over 240 bytes)."""
    if not isinstance(key, str) or not key or _has_control(key):
        raise StoreError(f"invalid store key {key[:80]!r}: no control characters (NUL, newline); use a "
                         "relative path like 'env/camera/file.mp4'")
    parts = PurePosixPath(key).parts
    if key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in key:
        raise StoreError(f"invalid store key {key!r}: use a relative path like 'env/camera/file.mp4'")
    reason = _unnameable(parts)
    if reason:
        raise StoreError(f"invalid store key {key[:80]!r}: {reason}")
    return key


def check_name(name: str, what: str) -> str:
    """An environment or camera name: one key part, not hidden, no control characters."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith(".") \
            or _has_control(name):
        raise StoreError(f"invalid {what} name {name!r}: use letters, digits, '_' or '-' "
                         "(no '/', no leading '.', no control characters)")
    return name


CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    """What an HTTP server needs to answer for an object: its size, a validator and its age."""

    size: int
    etag: str  # quoted, as in an HTTP ETag header
    last_modified: datetime  # UTC


class ObjectStore(Protocol):
    def list_keys(self, prefix: str = "") -> list[str]: ...
    def exists(self, key: str) -> bool: ...
    def read_bytes(self, key: str) -> bytes: ...
    def write_bytes(self, key: str, data: bytes) -> None: ...
    def upload_file(self, path: Path, key: str) -> None: ...
    def copy(self, key: str, new_key: str) -> None: ...
    def local_path(self, key: str) -> Path: ...
    def info(self, key: str) -> ObjectInfo: ...
    def read_range(self, key: str, start: int, length: int, etag: str | None = None) -> Iterator[bytes]: ...
    def video_source(self, key: str) -> str: ...
    def delete(self, key: str) -> None: ...
    @property
    def uri(self) -> str: ...


@dataclass(frozen=True)
class S3Retry:
    """How an S3 client retries and how long it waits; the defaults ride out a restart of ~30 s."""

    max_attempts: int = 10  # the first call included
    mode: str = "standard"  # or "adaptive" (also rate-limits the client when throttled)
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0

    def __post_init__(self):
        if self.mode not in ("standard", "adaptive"):
            raise ValueError(f"S3 retry mode {self.mode!r}: use 'standard' or 'adaptive'")
        if self.max_attempts < 1 or self.connect_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise ValueError("S3 retries need max_attempts >= 1 and positive timeouts")


def s3_client(retry: S3Retry = S3Retry(), *, profile_name: str | None = None, **client_options):
    """A boto3 S3 client with ``retry``'s backoff and timeouts; ``client_options`` go to
    ``boto3.Session.client`` (endpoint_url, region_name, aws_access_key_id, ...)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": retry.mode, "total_max_attempts": retry.max_attempts},
                    connect_timeout=retry.connect_timeout_s, read_timeout=retry.read_timeout_s)
    return boto3.session.Session(profile_name=profile_name).client("s3", config=config, **client_options)


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
            raise StoreError(f"no object {key!r} in the store")
        return path.read_bytes()

    def write_bytes(self, key: str, data: bytes) -> None:
        self._write_atomic(key, lambda handle: handle.write(data))

    def upload_file(self, path: Path, key: str) -> None:
        """Copy in chunks (uploads can be large), atomically like ``write_bytes``."""
        with open(path, "rb") as source:
            self._write_atomic(key, lambda handle: shutil.copyfileobj(source, handle, 1024 * 1024))

    def _write_atomic(self, key: str, write) -> None:
        """``write(handle)`` into a temp file beside the target, flushed to disk, then renamed over it.

        On failure (a full disk: ENOSPC) the temp file is removed, the previous object stays, and
        the StoreError names the key and the reason.
        """
        target = self._path(key)
        temp = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", suffix=".part",
                                             delete=False) as handle:
                temp = Path(handle.name)
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        except BaseException as exc:
            if temp is not None:
                temp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise StoreError(f"could not write {key!r} to the store: {exc.strerror or exc}; the "
                                 "previous version (if any) is unchanged") from exc
            raise

    def local_path(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise StoreError(f"no object {key!r} in the store")
        return path

    def copy(self, key: str, new_key: str) -> None:
        self.upload_file(self.local_path(key), new_key)

    def info(self, key: str) -> ObjectInfo:
        stat = self.local_path(key).stat()
        return ObjectInfo(stat.st_size, f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"',
                          datetime.fromtimestamp(stat.st_mtime, timezone.utc))

    def read_range(self, key: str, start: int, length: int, etag: str | None = None) -> Iterator[bytes]:
        """``length`` bytes from ``start``, in chunks; the file is opened now (a missing key raises here)."""
        handle = self.local_path(key).open("rb")
        handle.seek(start)

        def chunks() -> Iterator[bytes]:
            with handle:
                remaining = length
                while remaining > 0:
                    chunk = handle.read(min(CHUNK_BYTES, remaining))
                    if not chunk:
                        return
                    remaining -= len(chunk)
                    yield chunk
        return chunks()

    def video_source(self, key: str) -> str:
        """What a decoder (FFmpeg through OpenCV) opens for ``key``: the file itself."""
        return str(self.local_path(key))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Store:
    """An S3 bucket (any S3-compatible server: AWS, SeaweedFS, ...) through a boto3 client.

    ``local_path`` downloads into a cache folder (for code that needs a file) and re-uses the copy
    while its size and ETag are unchanged. Servers avoid it: ``read_range`` is a ranged GET and
    ``video_source`` a presigned URL that FFmpeg reads with its own ranged HTTP requests, so
    nothing is copied to local disk.
    """

    def __init__(self, client, bucket: str, prefix: str = "", cache_dir: Path | None = None,
                 url_expiry_s: int = 3600):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.cache_dir = Path(cache_dir or Path(tempfile.gettempdir()) / "spoton-s3-cache") / bucket
        self.url_expiry_s = url_expiry_s

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def ensure_bucket(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError:
                self.client.create_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"could not reach or create the bucket of {self.uri}: {exc}") from exc

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
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as error:
            raise StoreError(f"no object {key!r} in {self.uri}: {error}") from None
        except BotoCoreError as error:  # unreachable after the client's retries
            raise StoreError(f"could not read {key!r} from {self.uri}: {error}") from None

    def write_bytes(self, key: str, data: bytes) -> None:
        with self._writing(key):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def upload_file(self, path: Path, key: str) -> None:
        """One PUT, or a multipart upload (large files) that S3 shows only once it completes."""
        with self._writing(key):
            self.client.upload_file(str(path), self.bucket, self._key(key))

    @contextmanager
    def _writing(self, key: str):
        """A write that still fails after the client's retries becomes a StoreError naming the key."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            raise StoreError(f"could not write {key!r} to {self.uri}: {exc}; the previous version "
                             "(if any) is unchanged") from exc

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

    def copy(self, key: str, new_key: str) -> None:
        """A server-side copy (multipart for large objects): nothing passes through this machine."""
        with self._writing(new_key):
            self.client.copy({"Bucket": self.bucket, "Key": self._key(key)}, self.bucket, self._key(new_key))

    def info(self, key: str) -> ObjectInfo:
        head = self._head(key)
        if head is None:
            raise StoreError(f"no object {key!r} in {self.uri}")
        return ObjectInfo(int(head["ContentLength"]), head.get("ETag") or f'"{head["ContentLength"]:x}"',
                          head["LastModified"].astimezone(timezone.utc))

    def read_range(self, key: str, start: int, length: int, etag: str | None = None) -> Iterator[bytes]:
        """One ranged GET, issued now (a missing or, with ``etag``, changed object raises StoreError
        here, before any byte is sent); the body is streamed in chunks."""
        from botocore.exceptions import ClientError

        options = {"IfMatch": etag} if etag else {}
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key),
                                          Range=f"bytes={start}-{start + length - 1}", **options)["Body"]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            raise StoreError(f"could not read {key!r} from {self.uri}: {code}") from None

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(CHUNK_BYTES)
            finally:
                body.close()
        return chunks()

    def video_source(self, key: str) -> str:
        """A presigned GET URL (valid ``url_expiry_s``) of an existing object. It carries a signature:
        show the key instead (``spoton.redact`` hides the signature in logs)."""
        if self._head(key) is None:
            raise StoreError(f"no object {key!r} in {self.uri}")
        return self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": self._key(key)},
                                                  ExpiresIn=self.url_expiry_s)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


def lake_beside(store_uri: str) -> str:
    """The lake of an S3 store: ``lake`` beside the store's prefix (the prod profile's layout:
    ``s3://B/store`` -> ``s3://B/lake``; ``s3://B`` -> ``s3://B/lake``)."""
    bucket, prefix = parse_s3_uri(store_uri)
    parent = prefix.rpartition("/")[0]
    return f"s3://{bucket}/{parent + '/' if parent else ''}lake"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix); ValueError naming the expected form otherwise."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise ValueError(f"{uri!r} is not an S3 location: use s3://bucket or s3://bucket/prefix")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.strip("/")
