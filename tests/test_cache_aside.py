"""Key design, caches and cache-aside on real Redis and Memcached: the price rule cannot be broken."""

from __future__ import annotations

import json

import pytest

from experiments.caches import keydesign
from experiments.caches.adapters import LocalCache, MemcachedCache, RedisCache
from experiments.caches.cache_aside import CacheAside
from experiments.caches.origin import Origin
from experiments.errors import UncacheableError
from experiments.lab.endpoints import open_memcached, open_redis
from experiments.probes import hitvalue


@pytest.fixture
def caches(redis_server, memcached_server):
    redis_target, mc_target = open_redis(redis_server.url), open_memcached(memcached_server.address)
    yield [LocalCache(), RedisCache(redis_target), MemcachedCache(mc_target)]
    redis_target.close()
    mc_target.close()


def fast_origins(seed=1):
    return {f: Origin(f, 0.05, 0.1, 2048, seed) for f in ("product", "price", "review", "promo")}


def test_key_design_matches_the_seed():
    design = keydesign.load()
    assert {f: design[f].ttl_s for f in ("product", "reco", "promo", "review")} == {
        "product": 300, "reco": 900, "promo": 900, "review": 3600}
    assert design["reco"].key(user_id="u1", seed_asin="B1") == "reco:u1:B1"
    assert design.family_of("promo:manga-home").name == "promo"
    assert not design["price"].cacheable


def test_unknown_key_and_missing_ids_are_refused():
    design = keydesign.load()
    with pytest.raises(UncacheableError, match="not in the key design"):
        design.family_of("session:abc")
    with pytest.raises(UncacheableError, match="needs seed_asin"):
        design["reco"].key(user_id="u1")


def test_price_keys_are_refused_and_live_fields_stripped():
    design = keydesign.load()
    with pytest.raises(UncacheableError, match="never cached"):
        design.cacheable_payload("price:B1", {"price_cents": 100})
    assert design.cacheable_payload("product:B1", {"title": "t", "price_cents": 100}) == {"title": "t"}


def test_cache_aside_hits_after_one_miss_on_every_cache(caches):
    for cache in caches:
        aside = CacheAside(cache, fast_origins())
        first = aside.get("review:B1")
        second = aside.get("review:B1")
        assert first == second and (aside.misses, aside.hits) == (1, 1)
        assert aside.origins["review"].calls == 1


def test_price_is_live_on_every_read_and_never_stored(caches):
    for cache in caches:
        aside = CacheAside(cache, fast_origins())
        for _ in range(3):
            assert "price_cents" in aside.get("product:B7")
        assert aside.origins["price"].calls == 3 and aside.origins["product"].calls == 1
        stored = cache.items()
        assert stored and all("price_cents" not in json.loads(v) for v in stored.values())


def test_a_price_never_reaches_any_cache_under_a_workload(caches):
    hitvalue.drive_with_prices(caches, keys=20, requests=100, seed=3)
    assert hitvalue.price_audit(caches) == {"in-process": 0, "Redis": 0, "Memcached": 0}


def test_the_audit_finds_a_planted_price(caches):
    """The audit can fail: a value written around the key design is found."""
    for cache in caches:
        cache.set("product:B9", json.dumps({"title": "t", "price_cents": 1}).encode(), 60)
    assert hitvalue.price_audit(caches) == {"in-process": 1, "Redis": 1, "Memcached": 1}


def test_ttls_expire(caches):
    local = caches[0]
    local.set("promo:x", b"1", 0)
    assert local.get("promo:x") is None
