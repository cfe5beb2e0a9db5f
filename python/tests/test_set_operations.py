"""Manager().set() as Python 3.14's SetProxy: the operators and methods of a set. Reads
answer with plain sets (as the proxy's results are), in-place operators and the *_update
methods change the shared set (and `|=` and friends return the shared set itself)."""

import multiprocessing

import pytest

from helpers import join_all


def test_operators_give_plain_sets(manager):
    s = manager.set("abc")
    assert s & {"a", "z"} == {"a"} and type(s & {"a"}) is set
    assert {"a", "z"} & s == {"a"}
    assert s | {"z"} == {"a", "b", "c", "z"}
    assert {"z"} | s == {"a", "b", "c", "z"}
    assert s - {"a"} == {"b", "c"}
    assert {"a", "q"} - s == {"q"}
    assert s ^ {"a", "q"} == {"b", "c", "q"}
    assert {"a", "q"} ^ s == {"b", "c", "q"}
    assert frozenset("ab") & s == {"a", "b"}
    assert s == {"a", "b", "c"}  # unchanged
    with pytest.raises(TypeError):
        s & ["a"]
    with pytest.raises(TypeError):
        ["a"] | s


def test_comparisons(manager):
    s = manager.set([1, 2])
    assert s <= {1, 2} and s >= {1, 2} and not s < {1, 2} and not s > {1, 2}
    assert s < {1, 2, 3} and s > {1} and not s > {3}
    assert {1} < s and {1, 2, 3} > s
    with pytest.raises(TypeError):
        s < [1, 2, 3]


def test_in_place_operators_change_the_shared_set(manager):
    s = manager.set("abc")
    t = s
    t |= {"d"}
    assert t is s and s == {"a", "b", "c", "d"}
    t &= {"a", "b", "d", "x"}
    assert t is s and s == {"a", "b", "d"}
    t -= {"a"}
    assert t is s and s == {"b", "d"}
    t ^= {"b", "x"}
    assert t is s and s == {"d", "x"}
    for op in ("__ior__", "__iand__", "__isub__", "__ixor__"):
        with pytest.raises(TypeError):
            getattr(s, op)(["d"])
    assert s == {"d", "x"}


def test_methods(manager):
    s = manager.set([1, 2, 3])
    assert s.union([4], (5,)) == {1, 2, 3, 4, 5}
    assert s.intersection([1, 2], {2, 3}) == {2}
    assert s.difference([1], [2]) == {3}
    assert s.symmetric_difference([3, 4]) == {1, 2, 4}
    assert s.isdisjoint([7, 8]) and not s.isdisjoint([3])
    assert s.issubset(range(5)) and not s.issubset([1])
    assert s.issuperset([1, 3]) and not s.issuperset([9])
    assert s == {1, 2, 3}
    s.difference_update([1], {9})
    assert s == {2, 3}
    s.intersection_update([2, 3, 4], (3, 2))
    assert s == {2, 3}
    s.intersection_update([3])
    assert s == {3}
    s.symmetric_difference_update([3, 4, 4])
    assert s == {4}
    assert s.union() == {4} and type(s.union()) is set


def test_generic_alias(manager):
    s = manager.set()
    alias = type(s)[int]
    assert alias.__origin__ is type(s) and alias.__args__ == (int,)


def _grow(s):
    s |= {"child"}
    s -= {"gone"}


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_in_place_operators_across_processes(manager, method):
    s = manager.set(["gone", "kept"])
    p = multiprocessing.get_context(method).Process(target=_grow, args=(s,))
    p.start()
    join_all([p], 30)
    assert p.exitcode == 0
    assert s == {"kept", "child"}
