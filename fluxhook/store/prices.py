"""Models whose price BFL stated above the catalog's bound (see ``fluxhook.credits.price_bounds``), in Redis: their
requests go alone until the catalog is corrected."""

from __future__ import annotations

from redis import Redis

from fluxhook.store.keys import KEYS, Keys


class PricesOverCatalog:
    """Per model, the catalog price BFL was seen to exceed (a fingerprint of its entry's rule): a corrected
    entry has another fingerprint, so its requests are bounded again."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys

    def exceeded(self, model: str, fingerprint: str) -> bool:
        """Whether BFL charged more than this very catalog entry's bound for ``model``."""
        return self.connection.hget(self.keys.prices_over_catalog, model) == fingerprint.encode()

    def mark(self, model: str, fingerprint: str) -> None:
        """BFL charged more than the catalog entry ``fingerprint`` of ``model`` bounds."""
        self.connection.hset(self.keys.prices_over_catalog, model, fingerprint)
