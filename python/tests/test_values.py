"""shmarena.Value and shmarena.Array: typecodes, ranges, atomic arithmetic, slices,
the buffer protocol and cross-process use."""

import ctypes
import struct

import numpy as np
import pytest

import shmarena
from helpers import join_all, run_process

INT_RANGES = {
    "b": (-(2**7), 2**7 - 1),
    "B": (0, 2**8 - 1),
    "h": (-(2**15), 2**15 - 1),
    "H": (0, 2**16 - 1),
    "i": (-(2**31), 2**31 - 1),
    "I": (0, 2**32 - 1),
    "l": (-(2**63), 2**63 - 1),
    "L": (0, 2**64 - 1),
    "q": (-(2**63), 2**63 - 1),
    "Q": (0, 2**64 - 1),
}
INT_CODES = sorted(INT_RANGES)
UNSIGNED = [c for c in INT_CODES if INT_RANGES[c][0] == 0]
FLOAT_CODES = ["f", "d"]
ALL_CODES = INT_CODES + FLOAT_CODES + ["c", "u"]

# Element size and buffer format of each typecode ('l'/'L' are the 64-bit 'q'/'Q').
ITEMSIZE = {"b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8,
            "q": 8, "Q": 8, "f": 4, "d": 8, "c": 1, "u": 4}
FORMAT = {"b": "b", "B": "B", "h": "h", "H": "H", "i": "i", "I": "I", "l": "q",
          "L": "Q", "q": "q", "Q": "Q", "f": "f", "d": "d", "c": "c", "u": "w"}
NUMPY_DTYPE = {"b": np.int8, "B": np.uint8, "h": np.int16, "H": np.uint16,
               "i": np.int32, "I": np.uint32, "l": np.int64, "L": np.uint64,
               "q": np.int64, "Q": np.uint64, "f": np.float32, "d": np.float64}


def f32(x):
    """x rounded to a C float, as a Python float."""
    return struct.unpack("f", struct.pack("f", x))[0]


# ----------------------------------------------------------------------------- Value


@pytest.mark.parametrize("code", INT_CODES)
def test_int_value_round_trip(region, code):
    lo, hi = INT_RANGES[code]
    assert shmarena.Value(code, region=region).value == 0
    v = shmarena.Value(code, lo, region=region)
    assert v.value == lo
    assert type(v.value) is int
    v.value = hi
    assert v.value == hi
    v.value = 0
    assert v.value == 0
    v.value = 1
    assert v.value == 1
    assert shmarena.Value(code, hi, region=region).value == hi


@pytest.mark.parametrize("code", INT_CODES)
def test_int_value_typecode(region, code):
    expected = {"l": "q", "L": "Q"}.get(code, code)
    assert shmarena.Value(code, 0, region=region).typecode == expected


@pytest.mark.parametrize("code", INT_CODES)
def test_int_value_assignment_out_of_range(region, code):
    lo, hi = INT_RANGES[code]
    v = shmarena.Value(code, 7, region=region)
    with pytest.raises(OverflowError):
        v.value = hi + 1
    assert v.value == 7
    with pytest.raises(OverflowError):
        v.value = lo - 1
    assert v.value == 7
    with pytest.raises(OverflowError):
        v.value = 2**200
    assert v.value == 7
    with pytest.raises(OverflowError):
        shmarena.Value(code, hi + 1, region=region)
    with pytest.raises(OverflowError):
        shmarena.Value(code, lo - 1, region=region)


@pytest.mark.parametrize("code", INT_CODES)
def test_int_value_add_overflow_leaves_value(region, code):
    lo, hi = INT_RANGES[code]
    v = shmarena.Value(code, hi - 1, region=region)
    assert v.add(1) == hi
    assert v.value == hi
    with pytest.raises(OverflowError):
        v.add(1)
    assert v.value == hi
    with pytest.raises(OverflowError):
        v.fetch_add(1)
    assert v.value == hi
    with pytest.raises(OverflowError):
        v.add()  # default delta 1
    assert v.value == hi
    with pytest.raises(OverflowError):
        v.add(2**200)
    assert v.value == hi

    v.value = lo + 1
    assert v.fetch_add(-1) == lo + 1
    assert v.value == lo
    with pytest.raises(OverflowError):
        v.add(-1)
    assert v.value == lo
    with pytest.raises(OverflowError):
        v.fetch_add(-1)
    assert v.value == lo


@pytest.mark.parametrize("code", INT_CODES)
def test_int_value_add_and_fetch_add(region, code):
    v = shmarena.Value(code, 5, region=region)
    assert v.add() == 6
    assert v.fetch_add() == 6
    assert v.value == 7
    assert v.add(10) == 17
    assert v.fetch_add(3) == 17
    assert v.value == 20
    assert v.add(0) == 20
    assert v.add(-20) == 0
    assert v.value == 0


@pytest.mark.parametrize("code", UNSIGNED)
def test_unsigned_negative_delta_within_range(region, code):
    _, hi = INT_RANGES[code]
    v = shmarena.Value(code, 10, region=region)
    assert v.add(-3) == 7
    assert v.fetch_add(-7) == 7
    assert v.value == 0
    with pytest.raises(OverflowError):
        v.add(-1)
    assert v.value == 0
    v.value = hi
    assert v.add(-hi) == 0
    assert v.value == 0


@pytest.mark.parametrize("code", INT_CODES)
def test_int_value_compare_exchange(region, code):
    v = shmarena.Value(code, 5, region=region)
    assert v.compare_exchange(5, 9) == (True, 5)
    assert v.value == 9
    assert v.compare_exchange(5, 1) == (False, 9)
    assert v.value == 9
    _, hi = INT_RANGES[code]
    with pytest.raises(OverflowError):
        v.compare_exchange(9, hi + 1)
    assert v.value == 9


@pytest.mark.parametrize("code", FLOAT_CODES)
def test_float_value(region, code):
    assert shmarena.Value(code, region=region).value == 0.0
    v = shmarena.Value(code, 1.5, region=region)
    assert v.value == 1.5
    assert type(v.value) is float
    v.value = -2.25
    assert v.value == -2.25
    v.value = 3  # ints are accepted by float typecodes
    assert v.value == 3.0
    v.value = 0.1
    assert v.value == (f32(0.1) if code == "f" else 0.1)
    v.value = 1.5
    assert v.add(0.25) == 1.75
    assert v.fetch_add(0.25) == 1.75
    assert v.value == 2.0
    assert v.add() == 3.0
    assert v.add(-4.5) == -1.5
    assert v.compare_exchange(-1.5, 8.0) == (True, -1.5)
    assert v.value == 8.0
    assert v.compare_exchange(-1.5, 0.0) == (False, 8.0)
    assert v.value == 8.0
    if code == "d":
        v.value = 1e308
        assert v.value == 1e308


def test_char_value(region):
    assert shmarena.Value("c", region=region).value == b"\x00"
    v = shmarena.Value("c", b"a", region=region)
    assert v.value == b"a"
    v.value = b"z"
    assert v.value == b"z"
    v.value = b"\xff"
    assert v.value == b"\xff"
    for bad in ("z", b"ab", b"", 65):
        with pytest.raises(TypeError):
            v.value = bad
        assert v.value == b"\xff"
    with pytest.raises(TypeError):
        v.add(1)
    with pytest.raises(TypeError):
        v.fetch_add(1)
    assert v.value == b"\xff"
    assert v.compare_exchange(b"\xff", b"q") == (True, b"\xff")
    assert v.value == b"q"
    assert v.compare_exchange(b"x", b"y") == (False, b"q")
    assert v.value == b"q"


def test_unicode_value(region):
    assert shmarena.Value("u", region=region).value == "\x00"
    v = shmarena.Value("u", "x", region=region)
    assert v.value == "x"
    v.value = "你"
    assert v.value == "你"
    v.value = "\U0001F600"
    assert v.value == "\U0001F600"
    for bad in ("ab", "", b"a", 5):
        with pytest.raises(TypeError):
            v.value = bad
        assert v.value == "\U0001F600"
    with pytest.raises(TypeError):
        v.add(1)
    assert v.compare_exchange("\U0001F600", "y") == (True, "\U0001F600")
    assert v.value == "y"
    assert v.compare_exchange("x", "z") == (False, "y")
    assert v.value == "y"


@pytest.mark.parametrize(
    "ctype, initial, typecode",
    [
        (ctypes.c_double, 1.5, "d"),
        (ctypes.c_float, 2.5, "f"),
        (ctypes.c_int, -7, "i"),
        (ctypes.c_uint, 7, "I"),
        (ctypes.c_byte, -3, "b"),
        (ctypes.c_ubyte, 250, "B"),
        (ctypes.c_short, -300, "h"),
        (ctypes.c_ushort, 60000, "H"),
        (ctypes.c_longlong, -(2**40), "q"),
        (ctypes.c_ulonglong, 2**63, "Q"),
        (ctypes.c_long, -(2**40), "q"),
        (ctypes.c_ulong, 2**63, "Q"),
        (ctypes.c_char, b"k", "c"),
        (ctypes.c_wchar, "w", "u"),
    ],
)
def test_ctypes_types_accepted(region, ctype, initial, typecode):
    v = shmarena.Value(ctype, initial, region=region)
    assert v.value == initial
    assert v.typecode == typecode
    a = shmarena.Array(ctype, [initial, initial], region=region)
    assert a[0] == initial and a[1] == initial
    assert a.typecode == typecode


def test_wrong_typecode(region):
    with pytest.raises(TypeError):
        shmarena.Value("x", 1, region=region)
    with pytest.raises(TypeError):
        shmarena.Array("x", 3, region=region)
    with pytest.raises(TypeError):
        shmarena.Value(ctypes.c_char_p, b"a", region=region)


@pytest.mark.parametrize("code", INT_CODES)
def test_int_value_wrong_type(region, code):
    with pytest.raises(TypeError):
        shmarena.Value(code, "a", region=region)
    with pytest.raises(TypeError):
        shmarena.Value(code, 1.5, region=region)
    v = shmarena.Value(code, 3, region=region)
    for bad in ("a", 1.5, None, b"1", [1]):
        with pytest.raises(TypeError):
            v.value = bad
        assert v.value == 3
    with pytest.raises(TypeError):
        v.add("a")
    assert v.value == 3


@pytest.mark.parametrize("code", FLOAT_CODES)
def test_float_value_wrong_type(region, code):
    with pytest.raises(TypeError):
        shmarena.Value(code, "1.5", region=region)
    v = shmarena.Value(code, 1.5, region=region)
    for bad in ("a", None, b"1", [1.0]):
        with pytest.raises(TypeError):
            v.value = bad
        assert v.value == 1.5
    with pytest.raises(TypeError):
        v.add("x")
    assert v.value == 1.5


def _free_elsewhere(lock):
    """Whether another thread can take ``lock`` now (it gives it back at once)."""
    import threading

    got = []

    def attempt():
        taken = lock.acquire(False)
        got.append(taken)
        if taken:
            lock.release()

    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join()
    return got[0]


def test_value_get_lock_is_a_working_context_manager(region):
    v = shmarena.Value("i", 0, region=region)
    lock = v.get_lock()
    # As multiprocessing.Value's: lock=True gives a recursive lock, the same object each
    # time.
    assert isinstance(lock, shmarena._shmarena.RLock)
    assert v.get_lock() is lock
    assert _free_elsewhere(lock) is True
    with lock as got:
        assert got is True
        assert _free_elsewhere(lock) is False
        # Another handle to the same Value finds the same shared lock held.
        again = shmarena.Value("i", name=v.name, region=region)
        assert again.get_lock() is not lock
        assert _free_elsewhere(again.get_lock()) is False
        with lock:  # recursive
            pass
    assert _free_elsewhere(lock) is True
    assert lock.acquire(timeout=1) is True
    lock.release()
    # Values have distinct locks.
    w = shmarena.Value("i", 0, region=region)
    with v.get_lock():
        assert _free_elsewhere(w.get_lock()) is True
    # The wrapper's own acquire/release and with use the lock.
    with v:
        assert _free_elsewhere(lock) is False
    assert v.acquire() is True
    assert _free_elsewhere(lock) is False
    v.release()
    assert _free_elsewhere(lock) is True


def test_value_lock_argument_as_sharedctypes(region):
    # lock=False: the raw value, without get_lock or get_obj (as RawValue).
    raw = shmarena.Value("i", 5, lock=False, region=region)
    assert type(raw) is shmarena._shmarena.Value
    assert not hasattr(raw, "get_lock")
    assert not hasattr(raw, "get_obj")
    raw2 = shmarena.RawValue("i", 5, region=region)
    assert type(raw2) is shmarena._shmarena.Value
    assert not hasattr(raw2, "get_lock")
    # A given lock is the one get_lock returns, a stdlib one too.
    lock = shmarena.Lock(region=region)
    v = shmarena.Value("i", 5, lock=lock, region=region)
    assert v.get_lock() is lock
    import multiprocessing

    stdlib_lock = multiprocessing.Lock()
    assert shmarena.Value("d", 1.5, lock=stdlib_lock, region=region).get_lock() is stdlib_lock
    # lock=None is lock=True.
    assert isinstance(shmarena.Value("i", 5, lock=None, region=region).get_lock(),
                      shmarena._shmarena.RLock)
    # Anything else without acquire: AttributeError, as sharedctypes raises.
    with pytest.raises(AttributeError, match="'navalue' has no method 'acquire'"):
        shmarena.Value("i", 5, lock="navalue", region=region)
    with pytest.raises(AttributeError, match="0 has no method 'acquire'"):
        shmarena.Value("i", 5, lock=0, region=region)


def test_value_get_obj_and_name(region):
    v = shmarena.Value("i", 4, name="answer", region=region)
    raw = v.get_obj()
    # The raw value, sharing the memory (multiprocessing gives the ctypes object).
    assert type(raw) is shmarena._shmarena.Value
    raw.value = 6
    assert v.value == 6
    v.value = 4
    assert raw.value == 4
    assert v.name == "answer"
    assert v.region is region
    # Opening the same name again gives the same shared value (initial ignored).
    again = shmarena.Value("i", 99, name="answer", region=region)
    assert again.value == 4
    again.value = 5
    assert v.value == 5
    assert shmarena.RawValue("i", name="answer", region=region).value == 5


def _value_adder(v, n):
    for _ in range(n):
        v.add(1)


def _value_locked_increment(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value = v.value + 1  # read-modify-write, made safe by the lock


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_value_atomic_add_across_processes(region, method):
    import multiprocessing

    ctx = multiprocessing.get_context(method)
    v = shmarena.Value("q", 0, region=region)
    n = 3000
    procs = [ctx.Process(target=_value_adder, args=(v, n)) for _ in range(4)]
    for p in procs:
        p.start()
    _value_adder(v, n)
    join_all(procs, 60)
    assert v.value == 5 * n


def test_value_get_lock_excludes_across_processes(region, fork_ctx):
    v = shmarena.Value("i", 0, region=region)
    n = 500
    procs = [fork_ctx.Process(target=_value_locked_increment, args=(v, n)) for _ in range(4)]
    for p in procs:
        p.start()
    _value_locked_increment(v, n)
    join_all(procs, 60)
    assert v.value == 5 * n


# ----------------------------------------------------------------------------- Array


@pytest.mark.parametrize("code", INT_CODES + FLOAT_CODES)
def test_array_int_size_gives_zeros(region, code):
    a = shmarena.Array(code, 6, region=region)
    assert len(a) == 6
    assert a[:] == [0] * 6
    assert list(a) == [0] * 6
    assert shmarena.Array(code, 0, region=region)[:] == []


def test_array_special_zero_initialisers(region):
    assert shmarena.Array("c", 3, region=region)[:] == b"\x00\x00\x00"
    assert shmarena.Array("u", 3, region=region)[:] == "\x00\x00\x00"


def test_array_negative_size(region):
    with pytest.raises(ValueError):
        shmarena.Array("i", -1, region=region)


def test_array_initializer_sequence(region):
    a = shmarena.Array("i", range(10), region=region)
    assert len(a) == 10
    assert a[:] == list(range(10))
    d = shmarena.Array("d", [1.5, -2.5, 3.0], region=region)
    assert d[:] == [1.5, -2.5, 3.0]
    assert shmarena.Array("I", (2**32 - 1, 0), region=region)[:] == [2**32 - 1, 0]
    assert shmarena.RawArray("h", [1, 2], region=region)[:] == [1, 2]
    with pytest.raises(OverflowError):
        shmarena.Array("b", [1, 200], region=region)
    with pytest.raises(TypeError):
        shmarena.Array("i", [1, "x"], region=region)


def test_array_indexing(region):
    a = shmarena.Array("i", range(10), region=region)
    assert a[0] == 0
    assert a[9] == 9
    assert a[-1] == 9
    assert a[-10] == 0
    for bad in (10, -11, 2**40):
        with pytest.raises(IndexError):
            a[bad]
        with pytest.raises(IndexError):
            a[bad] = 1
    a[-2] = 100
    assert a[8] == 100
    a[0] = -5
    assert a[:] == [-5, 1, 2, 3, 4, 5, 6, 7, 100, 9]
    with pytest.raises(TypeError):
        a["x"]


def test_array_element_assignment_errors_leave_array(region):
    a = shmarena.Array("b", [1, 2, 3], region=region)
    with pytest.raises(OverflowError):
        a[1] = 128
    with pytest.raises(TypeError):
        a[1] = "x"
    with pytest.raises(TypeError):
        a[1] = 1.5
    assert a[:] == [1, 2, 3]


def test_array_slices_get(region):
    a = shmarena.Array("i", range(10), region=region)
    ref = list(range(10))
    for s in [slice(2, 5), slice(None, None, 2), slice(None, None, -1), slice(8, 2, -2),
              slice(-3, None), slice(5, 100), slice(7, 3), slice(1, 9, 3), slice(None)]:
        assert a[s] == ref[s], s


def test_array_slices_set(region):
    a = shmarena.Array("i", range(10), region=region)
    ref = list(range(10))
    a[1:4] = [10, 11, 12]
    ref[1:4] = [10, 11, 12]
    assert a[:] == ref
    a[::3] = [-1, -2, -3, -4]
    ref[::3] = [-1, -2, -3, -4]
    assert a[:] == ref
    a[::-1] = range(10)
    ref[::-1] = range(10)
    assert a[:] == ref
    a[8:2:-2] = (7, 7, 7)
    ref[8:2:-2] = (7, 7, 7)
    assert a[:] == ref
    a[5:5] = []
    assert a[:] == ref


def test_array_slice_wrong_length_changes_nothing(region):
    a = shmarena.Array("i", range(6), region=region)
    with pytest.raises(ValueError):
        a[1:4] = [1, 2]
    with pytest.raises(ValueError):
        a[1:4] = [1, 2, 3, 4]
    with pytest.raises(ValueError):
        a[::2] = [9, 9]
    assert a[:] == list(range(6))


def test_array_slice_bad_value_changes_nothing(region):
    a = shmarena.Array("b", range(6), region=region)
    with pytest.raises(OverflowError):
        a[0:4] = [10, 11, 1000, 13]
    assert a[:] == list(range(6))
    with pytest.raises(TypeError):
        a[0:4] = [10, 11, 12, "x"]
    assert a[:] == list(range(6))
    with pytest.raises(TypeError):
        a[::-1] = [1, 2, 3, 4, 5, None]
    assert a[:] == list(range(6))


def test_char_array_list_initializer(region):
    a = shmarena.Array("c", [b"h", b"e", b"l", b"l", b"o"], region=region)
    assert a[:] == b"hello"
    assert a[1] == b"e"
    assert a[-1] == b"o"
    assert a[1:3] == b"el"
    assert a[::-1] == b"olleh"
    a[1:3] = b"EL"
    assert a[:] == b"hELlo"
    a[0] = b"J"
    assert a[:] == b"JELlo"
    with pytest.raises(ValueError):
        a[0:2] = b"abc"
    assert a[:] == b"JELlo"


def test_char_array_bytes_initializer(region):
    a = shmarena.Array("c", b"hello", region=region)
    assert a[:] == b"hello"


def test_unicode_array(region):
    a = shmarena.Array("u", "hello", region=region)
    assert len(a) == 5
    assert a[:] == "hello"
    assert isinstance(a[1:3], str)
    assert a[1:3] == "el"
    assert a[::-1] == "olleh"
    assert a[1] == "e"
    a[1:3] = "你好"
    assert a[:] == "h你好lo"
    with pytest.raises(ValueError):
        a[0:2] = "abc"
    with pytest.raises(TypeError):
        a[0:2] = ["a", "bc"]
    assert a[:] == "h你好lo"


@pytest.mark.parametrize("code", INT_CODES)
def test_array_fetch_add_and_compare_exchange(region, code):
    lo, hi = INT_RANGES[code]
    a = shmarena.Array(code, [1, 2, 3], region=region)
    assert a.fetch_add(1, 10) == 2
    assert a[:] == [1, 12, 3]
    assert a.fetch_add(-1) == 3  # default delta 1
    assert a[:] == [1, 12, 4]
    assert a.fetch_add(0, -1) == 1
    assert a[:] == [0, 12, 4]
    assert a.compare_exchange(2, 4, 40) == (True, 4)
    assert a[:] == [0, 12, 40]
    assert a.compare_exchange(2, 4, 50) == (False, 40)
    assert a[:] == [0, 12, 40]
    a[0] = hi
    with pytest.raises(OverflowError):
        a.fetch_add(0, 1)
    assert a[0] == hi
    a[0] = lo
    with pytest.raises(OverflowError):
        a.fetch_add(0, -1)
    assert a[0] == lo
    with pytest.raises(IndexError):
        a.fetch_add(3, 1)
    with pytest.raises(IndexError):
        a.compare_exchange(-4, 0, 1)
    assert a[1:] == [12, 40]


def test_float_array_atomics(region):
    a = shmarena.Array("d", [0.5, 1.0], region=region)
    assert a.fetch_add(0, 0.25) == 0.5
    assert a[0] == 0.75
    assert a.compare_exchange(1, 1.0, 2.5) == (True, 1.0)
    assert a.compare_exchange(1, 1.0, 3.5) == (False, 2.5)
    assert a[:] == [0.75, 2.5]


@pytest.mark.parametrize("code", INT_CODES + FLOAT_CODES)
def test_numpy_frombuffer_is_zero_copy_writable_view(region, code):
    a = shmarena.Array(code, [1, 2, 3, 4], region=region)
    n = np.frombuffer(a, dtype=NUMPY_DTYPE[code])
    assert n.flags.writeable
    assert n.shape == (4,)
    assert n.tolist() == [1, 2, 3, 4]
    n[1] = 100
    assert a[1] == 100
    a[2] = 42
    assert n[2] == 42
    n += 1
    assert a[:] == [2, 101, 43, 5]
    a.fetch_add(0, 5)
    assert n[0] == 7
    # Two views of the same array share memory.
    m = np.frombuffer(a, dtype=NUMPY_DTYPE[code])
    assert np.shares_memory(n, m)


def test_numpy_asarray_uses_format(region):
    a = shmarena.Array("d", [1.5, 2.5], region=region)
    n = np.asarray(memoryview(a))
    assert n.dtype == np.float64
    n[0] = 9.0
    assert a[0] == 9.0


@pytest.mark.parametrize("code", ALL_CODES)
def test_memoryview_format_itemsize_shape(region, code):
    a = shmarena.Array(code, 5, region=region)
    m = memoryview(a)
    assert m.format == FORMAT[code]
    assert m.itemsize == ITEMSIZE[code]
    assert m.shape == (5,)
    assert m.ndim == 1
    assert m.strides == (ITEMSIZE[code],)
    assert m.nbytes == 5 * ITEMSIZE[code]
    assert m.readonly is False
    assert m.c_contiguous


@pytest.mark.parametrize("code", INT_CODES)
def test_memoryview_read_write(region, code):
    a = shmarena.Array(code, [1, 2, 3], region=region)
    m = memoryview(a)
    assert m.tolist() == [1, 2, 3]
    m[0] = 9
    assert a[0] == 9
    a[2] = 7
    assert m[2] == 7
    raw = memoryview(a).cast("B")
    assert len(raw) == 3 * ITEMSIZE[code]


def test_array_get_lock_and_obj(region):
    a = shmarena.Array("i", 3, region=region)
    raw = a.get_obj()
    assert type(raw) is shmarena._shmarena.Array
    raw[1] = 9
    assert a[:] == [0, 9, 0]
    assert not hasattr(raw, "get_lock")
    lock = a.get_lock()
    assert isinstance(lock, shmarena._shmarena.RLock)
    with a.get_lock():
        assert _free_elsewhere(lock) is False
    assert _free_elsewhere(lock) is True
    with a:
        assert _free_elsewhere(lock) is False


def test_array_lock_argument_as_sharedctypes(region):
    raw = shmarena.Array("i", range(3), lock=False, region=region)
    assert type(raw) is shmarena._shmarena.Array
    assert not hasattr(raw, "get_lock") and not hasattr(raw, "get_obj")
    assert not hasattr(shmarena.RawArray("i", 3, region=region), "get_lock")
    lock = shmarena.RLock(region=region)
    a = shmarena.Array("i", [1, 2], lock=lock, region=region)
    assert a.get_lock() is lock
    assert a[:] == [1, 2]
    with pytest.raises(AttributeError, match="'notalock' has no method 'acquire'"):
        shmarena.Array("i", range(10), lock="notalock", region=region)
    # A synchronized array is still a buffer (numpy views it).
    import numpy

    view = numpy.frombuffer(a, dtype=numpy.int32)
    view[0] = 7
    assert a[0] == 7


def _array_worker(a, index, n):
    for _ in range(n):
        a.fetch_add(index, 1)
        a.fetch_add(0, 1)


def _numpy_writer(a):
    n = np.frombuffer(a, dtype=np.int64)
    n[:] = np.arange(len(n)) * 3


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_array_across_processes(region, method):
    import multiprocessing

    ctx = multiprocessing.get_context(method)
    a = shmarena.Array("q", 4, region=region)
    n = 1000
    procs = [ctx.Process(target=_array_worker, args=(a, i, n)) for i in (1, 2, 3)]
    for p in procs:
        p.start()
    join_all(procs, 60)
    assert a[:] == [3 * n, n, n, n]
    run_process(ctx, _numpy_writer, a)
    assert a[:] == [0, 3, 6, 9]


def test_char_and_unicode_arrays_have_no_arithmetic(region):
    c = shmarena.Array("c", [b"a"], region=region)
    u = shmarena.Array("u", "a", region=region)
    for arr in (c, u):
        with pytest.raises(TypeError):
            arr.fetch_add(0, 1)
    assert c[:] == b"a" and u[:] == "a"
    assert c.compare_exchange(0, b"a", b"b") == (True, b"a")
    assert u.compare_exchange(0, "x", "y") == (False, "a")
    assert c[:] == b"b"


def test_float32_add_returns_stored_value(region):
    v = shmarena.Value("f", 0.1, region=region)
    result = v.add(0.2)
    assert result == v.value


def _value_proxy_child(v):
    assert v.get() == 2.5
    v.set(v.get() + 1)


def test_manager_value_has_the_proxys_get_and_set(manager, fork_ctx):
    # multiprocessing.managers.ValueProxy: get(), set(value) and the value property.
    v = manager.Value("d", 1.5)
    assert v.get() == 1.5
    assert v.set(2.5) is None
    assert v.value == 2.5 and v.get() == 2.5
    run_process(fork_ctx, _value_proxy_child, v)
    assert v.get() == 3.5
    counter = manager.Value("i", 0)
    with pytest.raises(OverflowError):
        counter.set(1 << 40)
    assert counter.get() == 0


class Point(ctypes.Structure):
    """A ctypes structure for the shared-structure tests (module level: spawned children
    unpickle it by name)."""

    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_double), ("z", ctypes.c_longlong)]


def _double_point(point):
    point.x *= 2
    point.y *= 2
    point.z *= 2


def test_value_of_structure(region):
    # As multiprocessing.sharedctypes: Value(StructType, *fields) with attribute access.
    p = shmarena.Value(Point, 3, 2, region=region)
    assert (p.x, p.y, p.z) == (3, 2.0, 0)
    assert type(p).__name__ == "SynchronizedPoint"
    assert isinstance(p, shmarena.SynchronizedStruct)
    assert isinstance(p.get_lock(), shmarena._shmarena.RLock)
    p.x *= 2
    p.z = 2**33
    raw = p.get_obj()
    assert isinstance(raw, Point)
    assert (raw.x, raw.y, raw.z) == (6, 2.0, 2**33)
    raw.y = 0.5
    assert p.y == 0.5
    # Field access goes through the lock: another thread cannot take it meanwhile.
    with p:
        assert _free_elsewhere(p.get_lock()) is False
    # lock=False and RawValue give the shared structure itself, without a lock.
    for plain in (shmarena.Value(Point, 1, lock=False, region=region),
                  shmarena.RawValue(Point, 1, region=region)):
        assert isinstance(plain, Point)
        assert not hasattr(plain, "get_lock")
        assert (plain.x, plain.y, plain.z) == (1, 0.0, 0)
    # A given lock, and a bad one.
    lock = shmarena.Lock(region=region)
    assert shmarena.Value(Point, lock=lock, region=region).get_lock() is lock
    with pytest.raises(AttributeError, match="has no method 'acquire'"):
        shmarena.Value(Point, lock="navalue", region=region)
    # Too many initializers: ctypes' own error.
    with pytest.raises(TypeError):
        shmarena.Value(Point, 1, 2, 3, 4, region=region)


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("lock", [True, False])
def test_structure_shared_with_child(region, method, lock):
    import multiprocessing

    p = shmarena.Value(Point, 3, 2, 2**33, lock=lock, region=region)
    run_process(multiprocessing.get_context(method), _double_point, p)
    assert (p.x, p.y, p.z) == (6, 4.0, 2**34)


@pytest.mark.parametrize("protocol", [2, 5])
def test_structure_pickles_as_shared_memory(region, protocol):
    import pickle

    p = shmarena.Value(Point, 1, region=region)
    q = pickle.loads(pickle.dumps(p, protocol))
    q.x = 42
    assert p.x == 42
    assert q.get_lock().name == p.get_lock().name
    raw = pickle.loads(pickle.dumps(p.get_obj(), protocol))
    raw.y = 1.25
    assert p.y == 1.25
    assert isinstance(raw, Point)
    # A plain Point still pickles by value (nothing changed for the user's type).
    copy = pickle.loads(pickle.dumps(Point(7), protocol))
    copy.x = 8
    assert type(copy) is Point and copy.x == 8


def test_synchronized_pickles_with_its_given_lock(region):
    import pickle

    lock = shmarena.Lock(region=region)
    v = shmarena.Value("i", 1, lock=lock, region=region)
    w = pickle.loads(pickle.dumps(v))
    assert type(w) is shmarena.Synchronized
    assert w.get_lock().name == lock.name
    a = shmarena.Array("d", [1.0], lock=lock, region=region)
    b = pickle.loads(pickle.dumps(a))
    assert type(b) is shmarena.SynchronizedArray
    assert b.get_lock().name == lock.name
    b[0] = 2.5
    assert a[:] == [2.5]
    # Without a given lock, the copy finds the same RLock by name.
    c = pickle.loads(pickle.dumps(shmarena.Value("i", 1, region=region)))
    assert isinstance(c.get_lock(), shmarena._shmarena.RLock)


def _shift_points(points):
    for i in range(len(points)):
        points[i].x += 10
    points[0] = Point(-1, -1.5, -2)


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("lock", [True, False])
def test_array_of_structures(region, method, lock):
    import multiprocessing
    import pickle

    points = shmarena.Array(Point, [(1, 0.5), Point(2, 1.5, 3), (3,)], lock=lock,
                            region=region)
    assert len(points) == 3
    assert [(p.x, p.y, p.z) for p in points[:]] == [(1, 0.5, 0), (2, 1.5, 3), (3, 0.0, 0)]
    if lock:
        assert isinstance(points, shmarena.SynchronizedStructArray)
        assert isinstance(points.get_lock(), shmarena._shmarena.RLock)
        raw = points.get_obj()
    else:
        assert not hasattr(points, "get_lock")
        raw = points
    run_process(multiprocessing.get_context(method), _shift_points, points)
    assert [(p.x, p.y, p.z) for p in raw] == [(-1, -1.5, -2), (12, 1.5, 3), (13, 0.0, 0)]
    # An element is a view of the shared bytes, and copies share them too.
    raw[1].y = 9.0
    assert points[1].y == 9.0
    again = pickle.loads(pickle.dumps(points))
    again[2].z = 7
    assert points[2].z == 7
    # By size: zeroed.
    zeros = shmarena.RawArray(Point, 2, region=region)
    assert [(p.x, p.y, p.z) for p in zeros] == [(0, 0.0, 0)] * 2
    with pytest.raises(ValueError):
        shmarena.RawArray(Point, 0, region=region)
