"""Manager().dict(), Manager().set() and Manager().Namespace(): mapping semantics,
insertion order, key canonicalisation, supported types, limits and atomic updates."""

import collections.abc
import multiprocessing
import time
import pickle

import pytest

import shmarena
from helpers import join_all, run_process


# ------------------------------------------------------------------ basic mapping


def test_set_get_del_contains_len(manager):
    d = manager.dict()
    assert len(d) == 0
    d["a"] = 1
    d["b"] = 2
    assert d["a"] == 1
    assert d["b"] == 2
    assert len(d) == 2
    assert "a" in d
    assert "c" not in d
    del d["a"]
    assert "a" not in d
    assert len(d) == 1
    with pytest.raises(KeyError):
        d["a"]
    with pytest.raises(KeyError):
        del d["a"]
    assert len(d) == 1
    assert d.copy() == {"b": 2}


def test_is_a_mutable_mapping(manager):
    d = manager.dict({"x": 1})
    assert isinstance(d, collections.abc.MutableMapping)
    assert dict(d) == {"x": 1}


def test_manager_dict_initial_contents(manager):
    d = manager.dict({"a": 1, "b": 2}, c=3)
    assert d.copy() == {"a": 1, "b": 2, "c": 3}
    assert d.keys() == ["a", "b", "c"]
    assert manager.dict([("x", 1), ("y", 2)]).copy() == {"x": 1, "y": 2}


def test_iteration_order_is_insertion_order(manager):
    d = manager.dict()
    ref = {}
    for k in ["z", "a", "m", 3, (1, 2), b"q", None, 2.5]:
        d[k] = str(k)
        ref[k] = str(k)
    assert list(d) == list(ref)
    # Replacing a key keeps its place.
    d["a"] = "new"
    ref["a"] = "new"
    assert list(d) == list(ref)
    assert d.items() == list(ref.items())
    # Deleting then re-inserting moves it to the end.
    del d["z"]
    del ref["z"]
    d["z"] = "back"
    ref["z"] = "back"
    assert list(d) == list(ref) == ["a", "m", 3, (1, 2), b"q", None, 2.5, "z"]
    assert d.keys() == list(ref.keys())
    assert d.values() == list(ref.values())
    assert d.items() == list(ref.items())


def test_keys_values_items_are_lists(manager):
    d = manager.dict()
    d["x"] = 1
    d["y"] = 2
    assert isinstance(d.keys(), list)
    assert isinstance(d.values(), list)
    assert isinstance(d.items(), list)
    assert d.keys() == ["x", "y"]
    assert d.values() == [1, 2]
    assert d.items() == [("x", 1), ("y", 2)]
    # A snapshot: changing the dict does not change the list returned before.
    keys = d.keys()
    d["z"] = 3
    assert keys == ["x", "y"]


def test_get_default(manager):
    d = manager.dict(a=1)
    assert d.get("a") == 1
    assert d.get("a", 5) == 1
    assert d.get("b") is None
    assert d.get("b", 5) == 5
    sentinel = object()
    assert d.get("b", sentinel) is sentinel
    assert len(d) == 1


def test_pop(manager):
    d = manager.dict(a=1, b=2)
    assert d.pop("a") == 1
    assert "a" not in d
    with pytest.raises(KeyError):
        d.pop("a")
    assert d.pop("a", "dflt") == "dflt"
    assert d.pop("a", None) is None
    assert d.copy() == {"b": 2}


def test_popitem_lifo(manager):
    d = manager.dict()
    for i, k in enumerate("abcd"):
        d[k] = i
    d["b"] = 10  # replacing keeps the place: "d" is still the last inserted
    assert d.popitem() == ("d", 3)
    assert d.popitem() == ("c", 2)
    d["e"] = 4
    assert d.popitem() == ("e", 4)
    assert d.popitem() == ("b", 10)
    assert d.popitem() == ("a", 0)
    assert len(d) == 0
    with pytest.raises(KeyError):
        d.popitem()


def test_setdefault(manager):
    d = manager.dict(a=1)
    assert d.setdefault("a", 9) == 1
    assert d["a"] == 1
    assert d.setdefault("b", 9) == 9
    assert d["b"] == 9
    assert d.setdefault("c") is None
    assert "c" in d and d["c"] is None
    assert d.keys() == ["a", "b", "c"]


def test_update_forms(manager):
    d = manager.dict()
    d.update({"a": 1, "b": 2})
    d.update([("c", 3), ("a", 10)])
    d.update(e=5, b=20)
    d.update({"f": 6}, g=7)
    d.update()
    assert d.copy() == {"a": 10, "b": 20, "c": 3, "e": 5, "f": 6, "g": 7}
    assert d.keys() == ["a", "b", "c", "e", "f", "g"]
    src = manager.dict(x=1)
    d.update(src)
    assert d["x"] == 1


def test_clear(manager):
    d = manager.dict(a=1, b=2)
    d.clear()
    assert len(d) == 0
    assert d.copy() == {}
    assert list(d) == []
    d["c"] = 3
    assert d.items() == [("c", 3)]


def test_copy_repr_eq(manager):
    plain = {"a": 1, 2: "b", (1, "x"): None, b"k": 1.5, None: True, -7: (1, (2,))}
    d = manager.dict()
    d.update(plain)
    copy = d.copy()
    assert type(copy) is dict
    assert copy == plain
    assert list(copy.items()) == list(plain.items())
    assert repr(d) == repr(plain)
    assert d == plain
    assert not (d != plain)
    assert d != {"a": 1}
    assert not (d == {"a": 2})
    other = manager.dict()
    other.update(plain)
    assert d == other


# ------------------------------------------------------------------ keys and types


def test_key_canonicalisation(manager):
    d = manager.dict()
    d[1] = "int"
    assert d[1.0] == "int"
    assert d[True] == "int"
    d[1.0] = "float"
    d[True] = "bool"
    assert len(d) == 1
    assert d[1] == "bool"
    assert 1.0 in d and True in d
    d[0] = "zero"
    assert d[False] == "zero" and d[0.0] == "zero" and d[-0.0] == "zero"
    assert len(d) == 2
    del d[1.0]
    assert 1 not in d and True not in d
    # Tuples canonicalise element by element.
    d[(1, 2)] = "t"
    assert d[(True, 2.0)] == "t"
    assert len(d) == 2
    # Non-integral floats stay distinct from ints.
    d[1.5] = "f"
    assert 1 not in d
    assert d[1.5] == "f"


def test_integral_float_keys_are_ints_within_64_bits(manager):
    d = manager.dict()
    k = 9.1e18  # integral, below 2**63
    d[int(k)] = "a"
    d[k] = "b"
    assert len(d) == 1
    assert d[int(k)] == "b"
    d[-(2.0**63)] = "min"
    assert d[-(2**63)] == "min"


def test_integral_float_keys_beyond_64_bits_stay_floats(manager):
    # The documented difference from dict: beyond 64 bits a float key and the int equal
    # to it are two keys (a float key like 1e300 stays 9 bytes).
    d = manager.dict()
    d[2**64] = "int"
    d[2.0**64] = "float"
    assert len(d) == 2
    assert d[2**64] == "int" and d[2.0**64] == "float"
    s = manager.set([2**64])
    assert 2.0**64 not in s
    s.add(2.0**64)
    assert len(s) == 2


@pytest.mark.parametrize(
    "key",
    ["", "plain", "你好世界", "emoji \U0001F600", b"", b"\x00\xff bytes", None, 0, -1,
     2**63 - 1, -(2**63), 2**64, -(2**64), 2**200, -(2**200), 1.5, -0.25, 1e300,
     float("inf"), (), (1,), (1, "a", b"b", None, 2.5), ((1, (2, (3, ("deep",)))), ()),
     (2**70, -(2**70))],
    ids=repr,
)
def test_key_and_value_types_round_trip(manager, key):
    d = manager.dict()
    d[key] = key
    assert key in d
    assert d[key] == key
    assert type(d[key]) is type(key)
    assert d.keys() == [key]
    assert d.values() == [key]
    got = d.keys()[0]
    assert got == key and type(got) is type(key)
    d["v"] = key
    assert d["v"] == key and type(d["v"]) is type(key)


def test_bool_values_keep_their_type(manager):
    d = manager.dict()
    d["t"] = True
    d["f"] = False
    d["one"] = 1
    assert d["t"] is True
    assert d["f"] is False
    assert type(d["one"]) is int
    assert d.values() == [True, False, 1]


def test_nested_tuple_values(manager):
    d = manager.dict()
    value = (1, (2.5, ("x", b"y", None, (True, False))), 2**80)
    d[(("k",), 1)] = value
    assert d[(("k",), 1)] == value
    got = d[(("k",), 1)]
    assert got[1][1][3][0] is True


def test_tuples_nested_too_deep(manager):
    d = manager.dict(capacity=64, max_key_bytes=1024, max_value_bytes=1024)
    deep = ()
    for _ in range(40):
        deep = (deep,)
    with pytest.raises(ValueError):
        d["x"] = deep
    assert len(d) == 0


# (Lists and dicts are stored by value: test_plain_lists_and_dicts_are_stored_by_value.)
@pytest.mark.parametrize("bad", [{1}, object(), bytearray(b"x")],
                         ids=["set", "object", "bytearray"])
def test_unsupported_types_raise_type_error(manager, bad):
    d = manager.dict()
    with pytest.raises(TypeError):
        d["k"] = bad
    assert len(d) == 0
    if isinstance(bad, (set, bytearray)):
        with pytest.raises(TypeError):
            d[bad] = 1
    with pytest.raises(TypeError):
        d[(1, bad)] = 1
    with pytest.raises(TypeError):
        d["k"] = (1, bad)
    assert len(d) == 0
    assert d.copy() == {}


def test_pickle_true_stores_any_picklable(manager):
    d = manager.dict(pickle=True)
    d["list"] = [1, [2, 3], {"a": (4,)}]
    assert d["list"] == [1, [2, 3], {"a": (4,)}]
    assert type(d["list"]) is list
    d[frozenset({1, 2})] = {"nested": [None]}
    assert d[frozenset({1, 2})] == {"nested": [None]}
    d["plain"] = 5
    assert d["plain"] == 5
    d["set"] = {1, 2}
    assert d.copy() == {"list": [1, [2, 3], {"a": (4,)}],
                        frozenset({1, 2}): {"nested": [None]}, "plain": 5, "set": {1, 2}}
    # A handle of the same dict opened without pickle=True refuses to load pickles.
    plain = shmarena._shmarena.Dict(manager._place_region(), d.name, None, pickle=False)
    assert plain["plain"] == 5
    assert plain["list"] == [1, [2, 3], {"a": (4,)}]  # no pickle: lists are stored as such
    with pytest.raises(shmarena.CorruptError):
        plain["set"]


def test_set_pickle_true(manager):
    s = manager.set(pickle=True)
    s.add(frozenset({1}))
    assert frozenset({1}) in s
    assert s.copy() == {frozenset({1})}


# ------------------------------------------------------------------ limits


def test_keys_over_the_slot_room_are_kept_out_of_line(manager):
    d = manager.dict(max_key_bytes=64)
    assert d.max_key_bytes == 64
    key = "你" * 21 + "a"  # 63 + 1 = 64 UTF-8 bytes: in the slot
    assert len(key.encode()) == 64
    d[key] = 1
    assert d[key] == 1
    longer = key + "b"  # 65 bytes: out of line, looked up by digest
    d[longer] = 2
    cjk = "你" * 22
    d[cjk] = 3
    big = b"x" * 100_000
    d[big] = "big"
    assert d[longer] == 2 and d[cjk] == 3 and d[big] == "big"
    assert longer in d and big in d and (big + b"y") not in d
    assert d.get(big + b"y", "absent") == "absent"
    d[longer] = "replaced"  # keeps its place
    assert d.keys() == [key, longer, cjk, big]
    assert d.copy() == {key: 1, longer: "replaced", cjk: 3, big: "big"}
    assert list(d) == [key, longer, cjk, big]
    assert d.pop(cjk) == 3 and cjk not in d
    del d[big]
    assert big not in d and len(d) == 2
    assert d.setdefault(big, 7) == 7 and d.setdefault(big, 8) == 7
    assert d.add(("t", "u" * 200), 5) == 5
    assert d.add(("t", "u" * 200), 5) == 10
    assert d.compare_exchange(("t", "u" * 200), 10, "ten") == (True, 10)
    assert d.popitem() == (("t", "u" * 200), "ten")
    d.clear()
    assert len(d) == 0 and d.copy() == {}


def test_values_over_the_slot_room_are_kept_out_of_line(manager):
    d = manager.dict(max_value_bytes=256)
    assert d.max_value_bytes == 256
    d["ok"] = "é" * 128  # 256 UTF-8 bytes: in the slot
    assert d["ok"] == "é" * 128
    d["keep"] = "old"
    d["keep"] = "x" * 257  # out of line now
    assert d["keep"] == "x" * 257
    d["keep"] = "back in the slot"
    assert d["keep"] == "back in the slot"
    d["new"] = b"\x00" * 100_000
    assert d.setdefault("new2", "y" * 1000) == "y" * 1000
    assert d.setdefault("new2", "z") == "y" * 1000
    assert d["new"] == b"\x00" * 100_000
    assert d.keys() == ["ok", "keep", "new", "new2"]
    assert d.values()[2:] == [b"\x00" * 100_000, "y" * 1000]
    assert d.pop("new") == b"\x00" * 100_000
    assert d.add("new2", "!") == "y" * 1000 + "!"
    assert d.compare_exchange("new2", "y" * 1000 + "!", ["a"] * 500) == (True, "y" * 1000 + "!")
    assert d.compare_exchange("new2", "y", 1) == (False, ["a"] * 500)
    assert d == {"ok": "é" * 128, "keep": "back in the slot", "new2": ["a"] * 500}


def test_out_of_line_blocks_return_to_the_region(manager):
    # Replacing and removing large values over and over must not use the region up: the
    # blocks they leave behind are freed once no process can still be reading them.
    d = manager.dict(capacity=64)
    value = "v" * 100_000
    for i in range(2000):  # 200 MB written into a 64 MiB region
        d[i % 8] = value + str(i)
        if i % 3 == 0:
            d.pop((i + 4) % 8, None)
    assert all(d[k].startswith(value) for k in d.keys())


def test_small_custom_limits(manager):
    d = manager.dict(max_key_bytes=8, max_value_bytes=8)
    d["12345678"] = "abcdefgh"
    d["123456789" * 10] = "x"
    d["k"] = "abcdefghi" * 10
    assert d.copy() == {"12345678": "abcdefgh", "123456789" * 10: "x", "k": "abcdefghi" * 10}


def test_small_limits_still_hold_ints_and_floats(manager):
    d = manager.dict(max_key_bytes=1, max_value_bytes=1)
    d[1] = 2.5
    d[True] = None
    assert d[1] is None


def test_dict_grows_past_its_initial_capacity(manager):
    d = manager.dict(capacity=4)
    assert d.capacity == 4
    for i in range(1000):
        d[i] = i
    assert d.setdefault(1000, 5) == 5
    assert len(d) == 1001
    assert d.capacity >= 1001
    assert d.copy() == {i: (5 if i == 1000 else i) for i in range(1001)}
    assert issubclass(shmarena.FullError, shmarena.Error)
    d[0] = "zero"
    del d[1]
    assert d[0] == "zero" and 1 not in d and len(d) == 1000
    # Insertion order survives the growth (a replaced value keeps its place).
    assert list(d.keys()) == [0] + list(range(2, 1001))


def test_a_full_region_raises_memory_error_and_the_dict_stays_usable(manager):
    # The 64 MiB test region: a dict of 1 KiB values outgrows it while it grows.
    d = manager.dict(max_value_bytes=1024)
    value = "v" * 1000
    inserted = 0
    with pytest.raises(MemoryError, match=r"out of memory in region .* of \d+ bytes"):
        for i in range(100_000):
            d[i] = value
            inserted += 1
    assert inserted > 1000
    assert len(d) == inserted
    assert d[0] == value and d[inserted - 1] == value and inserted not in d
    d[0] = "replaced"
    del d[1]
    assert d[0] == "replaced" and 1 not in d and len(d) == inserted - 1


def test_deleted_slots_are_reused(manager):
    d = manager.dict(capacity=4)
    d.update(a=1, b=2, c=3)
    for i in range(3000):
        d[i] = i
        del d[i]
    assert d.copy() == {"a": 1, "b": 2, "c": 3}
    s = manager.set(capacity=4)
    s.update("abc")
    for i in range(3000):
        s.add(i)
        s.remove(i)
    assert s == {"a", "b", "c"}


# ------------------------------------------------------------------ atomic updates


def test_add_counter(manager):
    d = manager.dict()
    assert d.add("n") == 1
    assert d.add("n") == 2
    assert d.add("n", 10) == 12
    assert d.add("n", -20) == -8
    assert d["n"] == -8
    assert d.add("f", 0.5) == 0.5
    assert d.add("f", 0.25) == 0.75
    assert d["f"] == 0.75
    assert type(d["f"]) is float
    d["i"] = 1
    assert d.add("i", 0.5) == 1.5
    assert d.add("big", 2**63 - 1) == 2**63 - 1
    assert d.add("big", 1) == 2**63
    assert d["big"] == 2**63
    assert d.add("big", -(2**63)) == 0
    # add keeps the entry's place.
    assert d.keys() == ["n", "f", "i", "big"]


def test_add_on_non_number_fails_and_changes_nothing(manager):
    d = manager.dict(s="text")
    with pytest.raises(TypeError):
        d.add("s", 1)
    assert d["s"] == "text"
    with pytest.raises(TypeError):
        d.add("new", "x")  # "x" + 0 is a TypeError
    assert "new" not in d


def test_compare_exchange(manager):
    d = manager.dict(k=5, s="a")
    assert d.compare_exchange("k", 5, 6) == (True, 5)
    assert d["k"] == 6
    assert d.compare_exchange("k", 5, 7) == (False, 6)
    assert d["k"] == 6
    assert d.compare_exchange("s", "a", ("t", 1)) == (True, "a")
    assert d["s"] == ("t", 1)
    assert d.compare_exchange("s", ("t", 1), None) == (True, ("t", 1))
    assert d["s"] is None
    with pytest.raises(KeyError):
        d.compare_exchange("missing", 1, 2)
    assert "missing" not in d
    assert d.compare_exchange("k", 6, "x" * 1000) == (True, 6)
    assert d["k"] == "x" * 1000
    assert d.keys() == ["k", "s"]


def _dict_adder(d, n):
    for i in range(n):
        d.add("total")
        d.add(i % 4, 0.5)


def _dict_setdefault(d, out, index):
    out[index] = d.setdefault("winner", index)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_dict_add_across_processes(manager, method):
    ctx = multiprocessing.get_context(method)
    d = manager.dict()
    n = 1000
    procs = [ctx.Process(target=_dict_adder, args=(d, n)) for _ in range(4)]
    for p in procs:
        p.start()
    join_all(procs, 60)
    assert d.copy() == {"total": 4 * n, 0: 500.0, 1: 500.0, 2: 500.0, 3: 500.0}


def test_setdefault_race_single_winner(manager, fork_ctx):
    d = manager.dict()
    out = manager.dict()
    procs = [fork_ctx.Process(target=_dict_setdefault, args=(d, out, i)) for i in range(6)]
    for p in procs:
        p.start()
    join_all(procs, 30)
    winner = d["winner"]
    assert winner in range(6)
    assert out.copy() == {i: winner for i in range(6)}


def _large_value_writer(d, writer, rounds):
    for i in range(rounds):
        key = i % 6
        d[key] = (key, writer, i, "w" * (3000 + i % 500))
        if i % 5 == 0:
            d.pop((key + 3) % 6, None)


def _large_value_reader(d, rounds, out):
    seen = 0
    for i in range(rounds):
        value = d.get(i % 6)
        if value is not None:
            key, _writer, j, text = value
            assert key == i % 6 and len(text) == 3000 + j % 500 and set(text) == {"w"}
            seen += 1
        if i % 100 == 0:
            for key, value in d.items():
                assert value[0] == key and len(value[3]) == 3000 + value[2] % 500
    out["reader"] = seen


def test_large_values_replaced_across_processes_read_whole(manager, fork_ctx):
    # Out-of-line values replaced and removed by two writers while a reader reads:
    # every read sees a whole value (a block is never freed or reused under a reader),
    # and a writer killed mid-way leaves the dict readable.
    d = manager.dict(capacity=16)
    out = manager.dict()
    writers = [
        fork_ctx.Process(target=_large_value_writer, args=(d, w, 3000)) for w in range(2)
    ]
    victim = fork_ctx.Process(target=_large_value_writer, args=(d, 9, 1_000_000))
    reader = fork_ctx.Process(target=_large_value_reader, args=(d, 6000, out))
    for p in [*writers, victim, reader]:
        p.start()
    time.sleep(0.3)
    victim.kill()
    join_all([*writers, reader], 120)
    victim.join(10)
    assert all(p.exitcode == 0 for p in [*writers, reader])
    assert out["reader"] > 0
    for key, value in d.items():
        assert value[0] == key and len(value[3]) == 3000 + value[2] % 500


# ------------------------------------------------------------------ set


def test_set_basic(manager):
    s = manager.set()
    assert len(s) == 0
    s.add("a")
    s.add("b")
    s.add("a")
    assert len(s) == 2
    assert "a" in s and "b" in s and "c" not in s
    s.discard("a")
    s.discard("zzz")  # absent: no error
    assert "a" not in s
    with pytest.raises(KeyError):
        s.remove("a")
    s.remove("b")
    assert len(s) == 0
    with pytest.raises(KeyError):
        s.pop()


def test_set_update_iter_copy_eq(manager):
    s = manager.set([1, 2])
    s.update([3, 4], (5,), "ab")
    expected = {1, 2, 3, 4, 5, "a", "b"}
    assert len(s) == 7
    assert set(iter(s)) == expected
    assert sorted(map(str, s)) == sorted(map(str, expected))
    c = s.copy()
    assert type(c) is set
    assert c == expected
    assert s == expected
    assert not (s == {1})
    assert s != {1}
    assert isinstance(s, collections.abc.Set)


def test_set_pop(manager):
    s = manager.set(["x", "y", "z"])
    popped = {s.pop(), s.pop(), s.pop()}
    assert popped == {"x", "y", "z"}
    assert len(s) == 0
    with pytest.raises(KeyError):
        s.pop()


def test_set_clear(manager):
    s = manager.set(range(10))
    s.clear()
    assert len(s) == 0
    assert s.copy() == set()
    s.add(1)
    assert s == {1}


def test_set_canonical_members(manager):
    s = manager.set([1, True, 1.0, 0, False, 0.0, (1, 2), (True, 2.0)])
    assert len(s) == 3
    assert s == {1, 0, (1, 2)}
    assert 1.0 in s and True in s and (1.0, 2) in s
    s.discard(True)
    assert 1 not in s
    assert len(s) == 2


def test_set_members_over_the_slot_room_are_kept_out_of_line(manager):
    s = manager.set(max_item_bytes=8)
    s.add("12345678")
    s.add(b"\x00")
    s.add(None)
    s.add(2**40)
    assert "123456789" not in s
    s.add("123456789")  # over the room: kept out of line
    s.add(2**70)  # a big int's 9 payload bytes
    s.add("x" * 100_000)
    s.add("x" * 100_000)  # present already
    with pytest.raises(TypeError):
        s.add([1])
    assert [1] not in s
    assert "123456789" in s and "x" * 100_000 in s and "x" * 99_999 not in s
    assert len(s) == 7
    assert s == {"12345678", b"\x00", None, 2**40, "123456789", 2**70, "x" * 100_000}
    s.remove("x" * 100_000)
    with pytest.raises(KeyError):
        s.remove("x" * 100_000)
    s.discard("123456789")
    s.discard("123456789")
    assert len(s) == 5 and "123456789" not in s
    popped = {s.pop() for _ in range(5)}
    assert popped == {"12345678", b"\x00", None, 2**40, 2**70}
    assert len(s) == 0
    s |= {"y" * 50, "z" * 500}
    assert s & {"z" * 500} == {"z" * 500}
    s.clear()
    assert len(s) == 0 and s == set()
    # Churn: the blocks of removed members return to the region (64 MiB).
    for i in range(1500):
        s.add("w" * 100_000 + str(i))
        s.discard("w" * 100_000 + str(i))
    assert len(s) == 0


def test_set_capacity(manager):
    s = manager.set(capacity=2)
    s.add(1)
    s.add(2)
    s.add(1)  # already present: no error
    s.add(3)  # past the initial capacity: the set grows
    assert s == {1, 2, 3}
    assert s.capacity >= 4


def _set_adder(s, start):
    for i in range(start, start + 200):
        s.add(i % 300)


def test_set_across_processes(manager, fork_ctx):
    s = manager.set()
    procs = [fork_ctx.Process(target=_set_adder, args=(s, k * 100)) for k in range(3)]
    for p in procs:
        p.start()
    join_all(procs, 30)
    assert s == set(range(300))
    assert len(s) == 300


# ------------------------------------------------------------------ Namespace


def test_namespace(manager):
    ns = manager.Namespace(x=1, y="two")
    assert ns.x == 1
    assert ns.y == "two"
    ns.z = (3, 4)
    assert ns.z == (3, 4)
    ns.x = 10
    assert ns.x == 10
    del ns.y
    with pytest.raises(AttributeError):
        ns.y
    with pytest.raises(AttributeError):
        del ns.y
    with pytest.raises(AttributeError):
        ns.missing
    assert repr(ns) == "Namespace(x=10, z=(3, 4))"


def _namespace_private_child(ns, inherited):
    # `_` names are the parent's own: not shared and not pickled (a forked child has a
    # copy of the parent's object, as with the manager's proxy).
    assert getattr(ns, "_private", None) == (1 if inherited else None)
    ns._private = "child"
    assert ns._private == "child"


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_namespace_underscore_attributes_stay_local(manager, method):
    # As the manager's NamespaceProxy: a name starting with '_' is set on the proxy
    # object itself, in this process only.
    ns = manager.Namespace(x=1)
    ns._private = 1
    assert ns._private == 1
    assert "_private" not in ns._dict
    assert repr(ns) == "Namespace(x=1)"
    other = pickle.loads(pickle.dumps(ns))
    assert not hasattr(other, "_private")
    assert other.x == 1
    run_process(multiprocessing.get_context(method), _namespace_private_child, ns,
                method == "fork")
    assert ns._private == 1
    del ns._private
    with pytest.raises(AttributeError):
        ns._private
    with pytest.raises(AttributeError):
        del ns._private
    # Namespace(**kwargs) stores every name, as the manager's Namespace does; an `_`
    # one is then not seen through the proxy (nor in its repr).
    hidden = manager.Namespace(_hidden=1, shown=2)
    with pytest.raises(AttributeError):
        hidden._hidden
    assert repr(hidden) == "Namespace(shown=2)"


# ------------------------------------------------------------------ list repetition


def test_list_imul_mul_rmul(manager):
    l = manager.list([1, "a"])
    alias = l
    l *= 3
    assert l is alias
    assert l == [1, "a"] * 3
    # `*` gives a plain list, as the manager's ListProxy returns.
    doubled = l * 2
    assert type(doubled) is list and doubled == [1, "a"] * 6
    assert 2 * l == doubled
    assert l * 0 == [] and l * -1 == []
    with pytest.raises(TypeError):
        l * "x"
    with pytest.raises(TypeError):
        l *= 1.5
    assert l == [1, "a"] * 3
    l *= 0
    assert l == [] and len(l) == 0
    small = manager.list([1, 2], capacity=4)
    small *= 3  # past the capacity it started with: the list grows
    assert small == [1, 2] * 3


def _namespace_child(ns):
    ns.child = ns.parent + 1


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_namespace_across_processes(manager, method):
    ctx = multiprocessing.get_context(method)
    ns = manager.Namespace(parent=41)
    p = ctx.Process(target=_namespace_child, args=(ns,))
    p.start()
    p.join(30)
    assert p.exitcode == 0
    assert ns.child == 42


# ------------------------------------------------------------------ lookups of unstorable keys


def test_get_and_pop_default_for_long_absent_key(manager):
    d = manager.dict(max_key_bytes=8)
    assert ("x" * 90) not in d
    assert d.get("x" * 90, "dflt") == "dflt"
    assert d.pop("x" * 90, "dflt") == "dflt"


def test_contains_unstorable_key_is_false(manager):
    d = manager.dict(max_key_bytes=8)
    assert ("x" * 90) not in d
    assert [1] not in d
    s = manager.set()
    assert [1] not in s


def test_capacity_rounds_up_to_power_of_two(manager):
    d = manager.dict(capacity=5)
    assert d.capacity == 8
    for i in range(8):
        d[i] = i
    d[8] = 8  # grows
    assert len(d) == 9 and d.capacity == 16
    assert manager.set(capacity=3).capacity == 4


def test_dict_iterator_raises_when_the_dict_changes(manager):
    # As a dict's (and a manager's DictProxy's) iterator.
    d = manager.dict()
    for i in range(65, 70):
        d[i] = chr(i)
    it = iter(d)
    assert iter(it) is it
    assert list(it) == [65, 66, 67, 68, 69]
    assert list(it) == []  # exhausted, and stays so
    d[70] = "F"
    assert list(it) == []
    # A change of size after the iterator was made: RuntimeError, at every later next.
    it = iter(d)
    assert next(it) == 65
    d.clear()
    with pytest.raises(RuntimeError, match="dictionary changed size during iteration"):
        next(it)
    with pytest.raises(RuntimeError, match="dictionary changed size during iteration"):
        next(it)
    # The same size, other keys: RuntimeError too.
    d.update({1: "a", 2: "b"})
    it = iter(d)
    del d[2]
    d[3] = "c"
    assert next(it) == 1
    with pytest.raises(RuntimeError, match="dictionary keys changed during iteration"):
        next(it)
    # A value changed meanwhile is no change of the keys.
    it = iter(d)
    d[1] = "z"
    assert list(it) == [1, 3]


def test_list_iterator_sees_later_changes(manager):
    # As a list's (and a manager's ListProxy's) iterator: by index, over the live list.
    a = manager.list(range(3))
    it = iter(a)
    assert iter(it) is it
    assert it.__length_hint__() == 3
    a[0] = 100
    assert next(it) == 100
    a.append(3)
    assert list(it) == [1, 2, 3]
    assert it.__length_hint__() == 0
    a.append(4)
    assert list(it) == []  # ended, and stays so
    it = iter(a)
    assert next(it) == 100
    a.clear()
    assert list(it) == []
    assert list(a) == []


def test_nested_dicts_are_references(manager):
    # CPython's test_dict_proxy_nested, with exact results: a shared dict stored in a dict
    # or list is a reference; changes through either handle show in both.
    pets = manager.dict(capacity=64, ferrets=2, hamsters=4)
    supplies = manager.dict(capacity=64, water=10, feed=3)
    d = manager.dict(capacity=64, pets=pets, supplies=supplies)
    inner = d["supplies"]
    assert type(inner) is shmarena._shmarena.Dict
    assert inner.name == supplies.name
    d["supplies"]["blankets"] = 5
    assert supplies["blankets"] == 5
    supplies["water"] = 7
    assert d["supplies"]["water"] == 7
    d.clear()
    assert len(d) == 0
    assert supplies.copy() == {"water": 7, "feed": 3, "blankets": 5}
    l = manager.list([pets, supplies], capacity=64)
    l[0]["marmots"] = 1
    assert pets["marmots"] == 1
    outer = manager.list([[88, 99], l], capacity=64)
    assert type(outer[0]) is list and outer[0] == [88, 99]
    assert outer[-1][-1]["feed"] == 3


def test_nested_lists_and_queues_are_references(manager, region):
    a = manager.list([manager.list(range(3), capacity=64) for _ in range(3)])
    assert [inner[:] for inner in a] == [[0, 1, 2]] * 3
    a[0][-1] = 55
    assert [inner[:] for inner in a] == [[0, 1, 55], [0, 1, 2], [0, 1, 2]]
    assert a[1].pop() == 2
    assert [len(inner) for inner in a] == [3, 2, 3]
    # A list holding itself.
    b = manager.list(capacity=64)
    b.append(b)
    b.append(1)
    assert b[0][0][0][1] == 1
    # Queues (and a JoinableQueue, a Value, a Lock, a Namespace) inside a list and a dict.
    q = manager.list(capacity=64)
    q.append(manager.Queue())
    q[0].put(123)
    assert q[0].get() == 123
    # A JoinableQueue's reference (its queue, counter, condition and lock) takes more
    # than the default 256 bytes.
    d = manager.dict(capacity=64, max_value_bytes=1024)
    d[0] = manager.Queue()
    d[0].put(456)
    assert d[0].get() == 456
    d["jq"] = manager.JoinableQueue()
    d["jq"].put("x")
    assert d["jq"].get() == "x"
    d["jq"].task_done()
    d["jq"].join()
    d["v"] = manager.Value("i", 1)
    d["v"].value += 41
    assert d["v"].value == 42
    assert isinstance(d["v"], shmarena.Synchronized)
    d["lock"] = manager.Lock()
    with d["lock"]:
        assert d["lock"].locked()
    d["ns"] = shmarena.Namespace(manager.dict(capacity=64), x=1)
    d["ns"].y = 2
    assert (d["ns"].x, d["ns"].y) == (1, 2)
    d["region"] = region
    assert d["region"].path == region.path
    # Tuples holding references.
    d["pair"] = (q, 5)
    assert d["pair"][0][0].qsize() == 0 and d["pair"][1] == 5


def test_plain_lists_and_dicts_are_stored_by_value(manager):
    l = manager.list(capacity=64)
    l.append([1, [2, "three"], {"k": (4, None)}])
    got = l[0]
    assert got == [1, [2, "three"], {"k": (4, None)}]
    assert type(got) is list and type(got[2]) is dict
    got.append("local")  # a copy: the shared item is unchanged
    assert l[0] == [1, [2, "three"], {"k": (4, None)}]
    d = manager.dict(capacity=64)
    d["m"] = {1: [], 2.5: {}}
    assert d["m"] == {1: [], 2.5: {}}
    # Lists and dicts are no keys or set members (unhashable, as in Python).
    with pytest.raises(TypeError, match="unhashable type: 'list'"):
        d[[1]] = 1
    with pytest.raises(TypeError, match="unhashable type: 'dict'"):
        manager.set(capacity=64).add({})
    with pytest.raises(TypeError, match="unhashable type: 'list'"):
        d[(1, [2])] = 1
    # Other objects still need pickle=True.
    with pytest.raises(TypeError, match="pickle=True"):
        l.append(object())


def _grow_nested(outer):
    outer["inner"]["from_child"] = 1
    outer["items"][0].append("child")
    outer["queue"].put("child")


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_nested_references_across_processes(manager, method):
    outer = manager.dict(capacity=64)
    inner = manager.dict(capacity=64, a=1)
    outer["inner"] = inner
    outer["items"] = manager.list([manager.list(capacity=64)])
    outer["queue"] = manager.Queue()
    run_process(multiprocessing.get_context(method), _grow_nested, outer)
    assert inner.copy() == {"a": 1, "from_child": 1}
    assert outer["items"][0][:] == ["child"]
    assert outer["queue"].get(timeout=5) == "child"


def test_a_reference_to_anything_but_a_rebuilder_is_refused(region):
    manager = shmarena.Manager(region=region)
    l = manager.list(capacity=64)
    l.append(manager.dict(capacity=64))
    with open(region.path, "r+b") as f:
        data = f.read()
        at = data.index(b"_rebuild")
        assert data.count(b"_rebuild") == 1
        f.seek(at)
        f.write(b"__import")
    with pytest.raises(shmarena.CorruptError, match='"__import", no shmarena rebuilder'):
        l[0]


def test_list_items_over_the_slot_room_are_kept_out_of_line(manager):
    lst = manager.list(max_item_bytes=16)
    big = "b" * 10_000
    lst.append(big)
    lst.extend(["small", big + "2", 3])
    assert lst[0] == big and lst[2] == big + "2" and len(lst) == 4
    lst[1] = "x" * 5000
    lst[0] = 0
    lst.insert(1, big + "i")
    lst.sort(key=str)
    assert lst.copy() == sorted([0, big + "i", "x" * 5000, big + "2", 3], key=str)
    assert lst.pop() == "x" * 5000
    assert big + "2" in lst and list(lst) == lst.copy()
    lst.reverse()
    del lst[0]
    assert len(lst) == 3
    # Churn: blocks left behind by replaced and rewritten items return to the region.
    for i in range(1500):  # 150 MB through a 64 MiB region
        lst[0] = "c" * 100_000 + str(i)
        if i % 100 == 0:
            lst.reverse()
    lst.clear()
    assert len(lst) == 0
