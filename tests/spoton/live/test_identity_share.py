"""Live global ids shared through real Redis: two galleries (as on two API instances) see each other's identities."""
from __future__ import annotations

import uuid

import pytest
import redis

from spoton.live.identity import LiveIdentityConfig, LiveIdentityGallery, RedisIdentityShare
from test_live_identity import ALICE, BOB, result, unit

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis_prefix():
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.skip(f"Redis is not running on {REDIS_URL} ({exc}): start redis-server")
    prefix = f"spoton-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)


def test_two_galleries_on_one_redis_share_ids_and_reacquire_each_others_people(redis_prefix):
    client, clock = redis.Redis.from_url(REDIS_URL), Clock()
    share = lambda env: RedisIdentityShare(client, env, redis_prefix, refresh_s=0.0, clock=clock)  # noqa: E731
    config = LiveIdentityConfig(publish_every_s=0.0)
    here, there = LiveIdentityGallery(config, share("pets")), LiveIdentityGallery(config, share("pets"))
    elsewhere = LiveIdentityGallery(config, share("other-site"))
    alice, bob = here.update({"cam1": result("cam1", [1, 2], [(0.0, 0.0), (9.0, 0.0)])}, now=0.0,
                             embeddings={"cam1": {0: ALICE, 1: BOB}})["cam1"].tolist()
    # ids are issued environment-wide: the other gallery's next new person gets a fresh one
    carol = there.update({"cam2": result("cam2", [1], [(30.0, 30.0)])}, now=0.0,
                         embeddings={"cam2": {0: unit(0, 0, 1)}})["cam2"][0]
    assert len({alice, bob, carol}) == 3
    # 4 s later Alice walks into the other instance's camera, 2 m on: she keeps her global id there
    clock.now += 4.0
    ids = there.update({"cam2": result("cam2", [1, 5], [(30.0, 30.0), (2.0, 0.0)])}, now=4.0,
                       embeddings={"cam2": {1: unit(1, 0.22)}})["cam2"]
    assert ids[1] == alice and there.adopted == 1 and there.issued(alice)
    # someone else there, who does not look like Bob, does not take Bob's id
    ids = there.update({"cam2": result("cam2", [1, 5, 6], [(30.0, 30.0), (2.2, 0.0), (9.5, 0.0)])}, now=4.5,
                       embeddings={"cam2": {2: unit(0, 0, 0, 1)}})["cam2"]
    assert ids[2] not in (alice, bob)
    # another environment shares nothing: its ids count on their own, its galleries adopt nobody
    assert elsewhere.update({"cam1": result("cam1", [1], [(2.0, 0.0)])}, now=4.0,
                            embeddings={"cam1": {0: ALICE}})["cam1"].tolist() == [1]
    # records older than the share's max age are ignored
    clock.now += 60.0
    late = LiveIdentityGallery(config, share("pets")).update({"cam1": result("cam1", [3], [(9.0, 0.0)])}, now=0.0,
                                                               embeddings={"cam1": {0: BOB}})["cam1"][0]
    assert late not in (alice, bob, carol)


def test_a_redis_outage_leaves_the_gallery_working_alone():
    dead = redis.Redis(host="127.0.0.1", port=1, socket_timeout=0.2, socket_connect_timeout=0.2)  # nothing listens
    gallery = LiveIdentityGallery(share=RedisIdentityShare(dead, "pets"))
    ids = gallery.update({"cam1": result("cam1", [1, 2], [(0.0, 0.0), (5.0, 0.0)])}, now=0.0,
                         embeddings={"cam1": {0: ALICE, 1: BOB}})["cam1"]
    assert sorted(ids.tolist()) == [1, 2]
    assert gallery.update({"cam1": result("cam1", [1, 2, 3], [(0.0, 0.0), (5.0, 0.0), (9.0, 0.0)])},
                          now=0.1)["cam1"].tolist()[2] == 3
    assert gallery.issued(3)
