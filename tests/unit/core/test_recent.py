"""A map that forgets its oldest entries past a bound (fluxhook/core/recent.py)."""

from __future__ import annotations

from fluxhook.core.recent import Recent


def test_past_its_bound_the_oldest_set_goes_first_and_setting_one_again_makes_it_the_newest():
    kept: Recent[str, int] = Recent(3)
    for n, key in enumerate("abc"):
        kept[key] = n
    kept["a"] = 9
    kept["d"] = 3
    assert list(kept.items()) == [("c", 2), ("a", 9), ("d", 3)]


def test_weighed_the_oldest_go_until_the_rest_weigh_no_more_than_the_bound_but_the_newest_stays():
    kept: Recent[str, str] = Recent(10, weigh=len, most_weight=5)
    kept["a"], kept["b"] = "xx", "yyy"
    kept["b"] = "y"  # in place of what it weighed
    kept["c"] = "zz"
    assert list(kept) == ["a", "b", "c"] and kept.weight == 5
    kept["d"] = "w" * 9
    assert list(kept) == ["d"] and kept.weight == 9


def test_an_entry_removed_takes_its_weight_with_it():
    kept: Recent[str, str] = Recent(10, weigh=len, most_weight=5)
    kept["a"], kept["b"] = "xx", "yyy"
    del kept["a"]
    assert kept.pop("b") == "yyy" and kept.pop("b", None) is None
    assert len(kept) == 0 and kept.weight == 0 and "a" not in kept
