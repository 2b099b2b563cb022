"""Q1 of the DAX section: after a price change, how long does DAX keep serving the old price?

A price change reaches DynamoDB along one of two paths: *through* DAX (the writer uses the DAX
client, so DAX writes the new item into its item cache — write-through) or *around* it (the catalog
pipeline writes to DynamoDB directly, and DAX keeps the cached item until its TTL or LRU removes
it). DAX has no API to invalidate one key. A third option keeps prices out of the cache: read them
with ``ConsistentRead=True``, which DAX passes to DynamoDB and does not cache.

The timeline caches many products at ages spread evenly over one TTL (as a busy cache has them),
changes every price at t = 0 along one path, and reads every product each ``step_s`` through a
`DaxNode`, counting the reads that see the old price.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.models.daxsim import DEFAULT_TTL_S, DaxNode, Table

PATHS = ("write around DAX", "write through DAX", "write around, price read consistently")
RECOMMENDATION = ("title", "price_cents", "image_url", "review_score")
"""The seed's recommendation-intent projection: it includes the price."""


def _node_with_products(products: int, ttl_s: float) -> tuple[DaxNode, Table, list[str]]:
    table = Table()
    node = DaxNode(table, item_ttl_s=ttl_s)
    keys = [f"ASIN#{i:06d}" for i in range(products)]
    for i, key in enumerate(keys):
        table.put(key, {"title": f"Volume {i}", "price_cents": 1000, "image_url": "i", "review_score": 4.5})
        node.get_item(key, -ttl_s * (i + 0.5) / products, projection=RECOMMENDATION)  # cached at spread ages
    return node, table, keys


def timeline(path: str, *, products: int = 300, horizon_s: float = 400, step_s: float = 5,
             ttl_s: float = DEFAULT_TTL_S) -> pd.DataFrame:
    """Share of products whose read returns the old price, every ``step_s`` after the change at 0."""
    if path not in PATHS:
        raise ValueError(f"path={path!r} is not one of {PATHS}")
    node, table, keys = _node_with_products(products, ttl_s)
    for key in keys:
        new = dict(table.items[key], price_cents=800)
        if path == "write through DAX":
            node.put_item(key, new, 0.0)
        else:
            table.put(key, new)
    rows = []
    for now in np.arange(0, horizon_s + step_s, step_s):
        stale = 0
        for key in keys:
            consistent = path == "write around, price read consistently"
            item = node.get_item(key, float(now), projection=("price_cents",) if consistent else RECOMMENDATION,
                                 consistent=consistent)
            stale += item["price_cents"] == 1000
        rows.append({"t_s": float(now), "path": path, "stale_share": stale / products})
    return pd.DataFrame(rows)


def timelines(**kwargs) -> pd.DataFrame:
    """`timeline` for every write path, in one table."""
    return pd.concat([timeline(path, **kwargs) for path in PATHS], ignore_index=True)


def stale_seconds(frame: pd.DataFrame) -> pd.DataFrame:
    """Per path: mean and longest time a product showed the old price (from the sampled timeline)."""
    rows = []
    for path, part in frame.groupby("path", sort=False):
        step = float(np.diff(part.t_s.to_numpy()[:2])[0])
        still = part[part.stale_share > 0]
        rows.append({"path": path, "mean_stale_s": float(part.stale_share.sum() * step),
                     "longest_stale_s": float(still.t_s.max() + step) if len(still) else 0.0})
    return pd.DataFrame(rows)
