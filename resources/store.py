"""Object-store resources: a local folder (embedded default) or S3 via dagster-aws."""
from __future__ import annotations

from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource

from spoton.store import LocalStore, ObjectStore, S3Store


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
    """A bucket (and key prefix) on any S3-compatible server, through dagster-aws ``S3Resource``."""

    s3: S3Resource
    bucket: str
    prefix: str = ""

    def get_store(self) -> ObjectStore:
        store = S3Store(self.s3.get_client(), self.bucket, self.prefix)
        store.ensure_bucket()
        return store
