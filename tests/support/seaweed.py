"""A SeaweedFS S3 server of a test's own and a boto3 client for it; the test skips, saying why,
where the server cannot start here (see orchestration/services.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from orchestration.services import SeaweedServer, ServiceError
from spoton.storage.store import s3_client


def start_seaweed(folder: Path, access_key: str, secret_key: str):
    """(started server, client) for a SeaweedFS keeping its data in ``folder``; stop the server after."""
    try:
        server = SeaweedServer(folder, access_key, secret_key).start()
    except ServiceError as error:
        pytest.skip(str(error))
    client = s3_client(endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=access_key,
                       aws_secret_access_key=secret_key)
    return server, client
