"""Turns between owners by start-time fair queueing: the rule every line of fluxhook's work is served by (pure).

Each owner's next turn has a virtual start: its *pass*, or the *clock* if that is later, so an owner back from idle
starts level with the others and carries no credit, however long it was away. A turn goes to the owner with the
earliest start among those with an item that may go now; ties go to the earliest item. The turn costs the owner
cost / weight (a permit, a task: 1), and the clock moves to its start. So over any stretch in which owners keep items
waiting, each is served in proportion to its weight, and one owner's backlog delays another owner's item by at most
one turn of each owner waiting.

The lines kept in Redis give turns by this rule in Lua, their passes and clock in a hash (``store/lua/fair_turns.lua``,
with the BFL slots' and end users' own parts beside it); ``FairTurns`` keeps them in one process's memory (the web's
work permits, ``receiver/bulkheads.py``). tests/unit/core/test_fair_turns.py serves the same owners through both
and finds them served in the same order.
"""

from __future__ import annotations

from typing import Any, Generic, Hashable, Iterable, Protocol, TypeVar


class Ordered(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...


Owner = TypeVar("Owner", bound=Hashable)
Item = TypeVar("Item", bound=Ordered)

# Passes kept before the ones the clock has reached are dropped: such a pass starts its owner's turn no earlier than
# no pass would, so forgetting it changes no turn, and owners that come once are not kept for the process's life.
KEPT_PASSES = 64


class FairTurns(Generic[Owner]):
    """The passes of the owners served (owner -> pass) and the clock, in memory; one lock's worth of state: the caller
    serialises its calls."""

    def __init__(self) -> None:
        self.clock = 0.0
        self._passes: dict[Owner, float] = {}
        self._prune_past = KEPT_PASSES

    def start(self, owner: Owner) -> float:
        """When ``owner``'s next turn starts: its pass, or the clock if that is later."""
        return max(self._passes.get(owner, 0.0), self.clock)

    def earliest(self, heads: Iterable[tuple[Owner, Item]]) -> tuple[Owner, Item] | None:
        """Of ``heads`` (each an owner with an item that may go now, its earliest; the items of every owner compare
        with each other), the one whose owner's turn starts first, ties to the earliest item; None for none."""
        best: tuple[Owner, Item] | None = None
        best_start = 0.0
        for owner, item in heads:
            start = self.start(owner)
            if best is None or start < best_start or (start == best_start and item < best[1]):
                best, best_start = (owner, item), start
        return best

    def serve(self, owner: Owner, cost: float = 1.0, weight: float = 1.0) -> float:
        """Give ``owner`` its turn, costing it ``cost`` / ``weight`` (a positive weight); the clock moves to the turn's
        start, which is returned."""
        if weight <= 0:
            raise ValueError(f"a weight is positive: {weight!r}")
        start = self.start(owner)
        self.clock = start
        self._passes[owner] = start + cost / weight
        if len(self._passes) > self._prune_past:
            self._passes = {kept: at for kept, at in self._passes.items() if at > start}
            self._prune_past = max(KEPT_PASSES, 2 * len(self._passes))
        return start
