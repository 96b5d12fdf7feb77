"""Store keys that no file system can name read as invalid keys (StoreError), never as OSError/ValueError."""
from __future__ import annotations

import pytest

from spoton.storage.store import LocalStore, StoreError


@pytest.mark.parametrize("key, words", [
    ("env\x00/environment.json", "control characters"),
    ("env/" + "a" * 237 + ".mp4", "over 240 bytes"),
    ("env/\ud800.mp4", "not valid Unicode"),
])
def test_unnameable_keys_are_store_errors(tmp_path, key, words):
    store = LocalStore(tmp_path)
    for use in (store.exists, store.read_bytes, store.local_path, lambda k: store.write_bytes(k, b"x")):
        with pytest.raises(StoreError, match=words):
            use(key)


def test_a_240_byte_name_is_still_a_key(tmp_path):
    store = LocalStore(tmp_path)
    key = "env/" + "é" * 118 + ".mp4"  # 236 + 4 bytes
    store.write_bytes(key, b"x")
    assert store.read_bytes(key) == b"x"
