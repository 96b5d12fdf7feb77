"""Secrets out of text: camera passwords in URLs, ``token=`` query values, server file paths.

A source URI such as ``rtsp://camuser:S3cretPass@host/stream`` is kept whole for opening the
stream, but every response, log line, metric label and error message shows
``rtsp://camuser:***@host/stream``; a presigned S3 URL loses its signature and access key id. :func:`redact` is the one function that does it (it works on
any text, so error messages that quote a URL are covered too); :func:`install_log_redaction`
applies it to every log record of the process, from any library.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

REDACTED = "***"
# scheme://user:password@  (the password is anything up to the '@' that ends the authority)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/@:]*:)[^\s/@]*(?=@)")
# ?token=... / &token=... / access_token=... in a URL or query string, and the signing parts of a
# presigned S3 URL (SigV4 X-Amz-*, SigV2 Signature/AWSAccessKeyId)
_QUERY_TOKEN = re.compile(r"(?P<head>(?:[?&;]|\b)(?:(?:access_)?token|X-Amz-(?:Signature|Credential|Security-Token)"
                          r"|Signature|AWSAccessKeyId)=)[^&\s\"']*", re.IGNORECASE)
_FILE_SIZE = re.compile(r"\s*\(\d+ bytes\)")


def redact(text: str) -> str:
    """``text`` with URL passwords, ``token=`` values and S3 signatures replaced by ``***``."""
    text = _URL_PASSWORD.sub(rf"\g<head>{REDACTED}", text)
    return _QUERY_TOKEN.sub(rf"\g<head>{REDACTED}", text)


def hide_path(text: str, path: Path | str, name: str) -> str:
    """An error message about a server file that names it ``name`` (its key) instead of its path,
    without its size: a client must not learn the server's paths or probe its files."""
    return _FILE_SIZE.sub("", str(text).replace(str(path), name))


def _redacted_arg(arg):
    """A log argument whose text holds a secret becomes its redacted text; others stay as they are
    (numbers keep working with ``%d``)."""
    if isinstance(arg, (int, float)) or arg is None:
        return arg
    text = str(arg)
    clean = redact(text)
    return arg if clean == text else clean


def install_log_redaction() -> None:
    """Redact every log record this process creates, whatever its logger or handler: the message,
    its arguments and its exception text. Idempotent."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "redacts", False):
        return

    def make_record(*args, **kwargs) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted_arg(arg) for arg in record.args)
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    make_record.redacts = True
    logging.setLogRecordFactory(make_record)
