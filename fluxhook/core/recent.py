"""A map that forgets its oldest entries past a bound: what one process remembers of what it saw lately (keys
checked, refusals in force, searches made) without growing for the process's life."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, MutableMapping
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(MutableMapping[K, V]):
    """At most ``most`` entries and, given ``weigh``, at most ``most_weight`` of their weights in all (the newest is
    kept whatever it weighs). Setting an entry makes it the newest; past a bound the oldest go first. Not locked: its
    holders lock around it, as most must anyway around steps that read then change it, or another map with it."""

    def __init__(self, most: int, weigh: Callable[[V], int] = lambda _: 0, most_weight: int = 0):
        self.most = most
        self.weigh = weigh
        self.most_weight = most_weight
        self.weight = 0
        self._kept: OrderedDict[K, V] = OrderedDict()

    def __getitem__(self, key: K) -> V:
        return self._kept[key]

    def __setitem__(self, key: K, value: V) -> None:
        if key in self._kept:
            del self[key]
        self._kept[key] = value
        self.weight += self.weigh(value)
        while len(self._kept) > 1 and (len(self._kept) > self.most or self.weight > self.most_weight):
            del self[next(iter(self._kept))]

    def __delitem__(self, key: K) -> None:
        self.weight -= self.weigh(self._kept.pop(key))

    def __contains__(self, key: object) -> bool:
        return key in self._kept

    def __iter__(self) -> Iterator[K]:
        return iter(self._kept)

    def __len__(self) -> int:
        return len(self._kept)
