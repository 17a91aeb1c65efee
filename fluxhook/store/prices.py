"""What BFL's answers taught about each model's prices (see ``fluxhook.price_bounds``), in Redis."""

from __future__ import annotations

from redis import Redis

from fluxhook.price_bounds import Learned, Observation
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.scripts import LuaScript

_FIELDS = ("rate", "smallest", "input_per_image")


class LearnedPrices:
    """Per model: the highest rate charged, the smallest request priced, the most read per input image."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        self._learn = LuaScript(connection, "prices_learn")

    def of(self, model: str) -> Learned:
        """What is known of ``model`` (all None for a model never priced)."""
        values = self.connection.hmget(self.keys.prices, [f"{model}:{name}" for name in _FIELDS])
        return Learned(*(int(value) if value is not None else None for value in values))

    def learn(self, model: str, seen: Observation) -> None:
        """Keep what one priced answer teaches (only ever widening the bounds)."""
        self._learn([self.keys.prices], [model, seen.rate, seen.units,
                                         "" if seen.input_per_image is None else seen.input_per_image])
