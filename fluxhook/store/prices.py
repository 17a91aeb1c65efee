"""What BFL's answers taught about each model's prices (see ``fluxhook.credits.price_bounds``), in Redis."""

from __future__ import annotations

from redis import Redis

from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.scripts import LuaScript

_FIELDS = ("rate", "smallest", "input_per_image")


class LearnedPrices:
    """Per model: the highest rate charged, the smallest request priced, the most read per input image."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        self._learn = LuaScript(connection, "prices_learn")

    def of(self, model: str) -> tuple[int | None, int | None, int | None]:
        """(rate, smallest, input_per_image) of ``model``, each None until an answer taught it."""
        values = self.connection.hmget(self.keys.prices, [f"{model}:{name}" for name in _FIELDS])
        rate, smallest, per_image = (int(value) if value is not None else None for value in values)
        return rate, smallest, per_image

    def learn(self, model: str, rate: int, units: int, input_per_image: int | None) -> None:
        """Keep what one priced answer teaches (only ever widening the bounds)."""
        self._learn([self.keys.prices], [model, rate, units, "" if input_per_image is None else input_per_image])
