"""Object-store resources: a local folder (embedded default) or S3 via dagster-aws."""
from __future__ import annotations

from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource

from spoton.storage.store import LocalStore, ObjectStore, S3Retry, S3Store, s3_client


class ObjectStoreResource(ConfigurableResource):
    """Where sub-videos, calibration and the lake live; subclasses pick local disk or S3."""

    def get_store(self) -> ObjectStore:
        raise NotImplementedError


class LocalStoreResource(ObjectStoreResource):
    """A folder on this machine; ``root`` may be relative to the working directory."""

    root: str

    def get_store(self) -> ObjectStore:
        return LocalStore(self.root)


class S3StoreResource(ObjectStoreResource):
    """A bucket (and key prefix) on any S3-compatible server, at dagster-aws ``S3Resource``'s
    endpoint and credentials, through a client that retries with backoff (``spoton.storage.store.S3Retry``)."""

    s3: S3Resource
    bucket: str
    prefix: str = ""
    retry_mode: str = S3Retry.mode
    max_attempts: int = S3Retry.max_attempts
    connect_timeout_s: float = S3Retry.connect_timeout_s
    read_timeout_s: float = S3Retry.read_timeout_s

    def get_store(self) -> ObjectStore:
        retry = S3Retry(max_attempts=self.max_attempts, mode=self.retry_mode,
                        connect_timeout_s=self.connect_timeout_s, read_timeout_s=self.read_timeout_s)
        s3 = self.s3
        client = s3_client(retry, profile_name=s3.profile_name, region_name=s3.region_name,
                           endpoint_url=s3.endpoint_url, use_ssl=s3.use_ssl, verify=s3.verify,
                           aws_access_key_id=s3.aws_access_key_id, aws_secret_access_key=s3.aws_secret_access_key,
                           aws_session_token=s3.aws_session_token)
        store = S3Store(client, self.bucket, self.prefix)
        store.ensure_bucket()
        return store
