"""Cache-aside, the orchestrator's pattern in the seed: look in the cache; on a miss, call the origin
and fill the cache with the key design's TTL.

The key design is enforced here, not by callers: an uncacheable family (``price:``) always goes to
its origin, and live fields (``price_cents``) are stripped before anything is stored and re-read
live on every request that wants them.
"""

from __future__ import annotations

import json

from experiments.caches.keydesign import KeyDesign, load
from experiments.caches.origin import Origin


class CacheAside:
    """Cache-aside over any cache of `experiments.caches.adapters`, counting hits, misses and origin calls."""

    def __init__(self, cache, origins: dict[str, Origin], design: KeyDesign | None = None) -> None:
        self.cache, self.origins = cache, origins
        self.design = design or load()
        self.hits = self.misses = 0

    def get(self, key: str, *, live: bool = True) -> dict:
        """The document for ``key``; with ``live``, live fields are fetched from the price origin."""
        family = self.design.family_of(key)
        if not family.cacheable:
            return self.origins[family.name].fetch(key)
        raw = self.cache.get(key)
        if raw is None:
            self.misses += 1
            document = self.origins[family.name].fetch(key)
            payload = self.design.cacheable_payload(key, document)
            self.cache.set(key, json.dumps(payload).encode(), family.ttl_s)
            document = payload
        else:
            self.hits += 1
            document = json.loads(raw)
        if live and family.live_fields:
            price_key = self.design["price"].key(asin=key.rsplit(":", 1)[-1])
            fresh = self.origins["price"].fetch(price_key)
            document.update({f: fresh[f] for f in family.live_fields})
        return document
