"""shmarena: ``multiprocessing``'s shared objects in shared memory, with no broker.

Change one import line::

    from shmarena import Process, Value, Array, Manager

and ``Value``, ``Array`` and every ``Manager()`` object (dict, list, set, Namespace, Lock,
RLock, Condition, Event, Semaphore, BoundedSemaphore, Barrier, Queue) become direct
operations on one shared memory region: no manager process, no pickled round trip per
operation, atomic ``add`` instead of the ``+=`` race, and locks that tell the next owner
when their holder died instead of deadlocking everyone.

Objects live in a *region*, a file in ``/dev/shm``. By default each program gets one,
created by its first process and found by its children (through the environment variable
``SHMARENA_REGION``); the process that created it removes its name when it exits. If that
process is killed (SIGKILL, the OOM killer), the next program that creates a default region
(or ``shmarena gc``, or :func:`collect_default_regions`) removes it once no live process
has it open. Pass ``region=shmarena.Region(path, size)`` to use a region of your own (it
is never removed for you: call ``region.unlink()``).

Objects pickle as (region path, name), so they can be passed to ``Pool`` workers and to
children started with spawn or forkserver, not only inherited through fork.
"""

import collections.abc as _abc
import ctypes as _ctypes
import multiprocessing as _mp
import multiprocessing.util as _mp_util
import os as _os
import secrets as _secrets
import tempfile as _tempfile
import threading as _threading

from . import _shmarena
from ._shmarena import (
    CorruptError,
    Error,
    FullError,
    NotOwnedError,
    OwnerDiedError,
    Region,
)

# The standard process machinery works unchanged with shmarena objects.
from multiprocessing import (  # noqa: F401  (re-exported)
    Pool,
    Process,
    active_children,
    cpu_count,
    current_process,
    freeze_support,
    get_context,
    get_start_method,
    parent_process,
    set_start_method,
)

__all__ = [
    "Array",
    "Barrier",
    "BoundedSemaphore",
    "Condition",
    "CorruptError",
    "Error",
    "Event",
    "FullError",
    "JoinableQueue",
    "Lock",
    "Manager",
    "Namespace",
    "NotOwnedError",
    "OwnerDiedError",
    "Pool",
    "Process",
    "Queue",
    "RLock",
    "RawArray",
    "RawValue",
    "Region",
    "Semaphore",
    "SimpleQueue",
    "Synchronized",
    "SynchronizedArray",
    "SynchronizedStruct",
    "SynchronizedStructArray",
    "Value",
    "collect_default_regions",
    "default_region",
    "open_region",
]

#: Environment variable naming a default region to use: set it to share one region
#: between programs (every process that sees it uses it).
REGION_ENV = "SHMARENA_REGION"
#: Where a program's first process leaves its default region's path for its
#: ``multiprocessing`` children (spawn and forkserver ones read it from their environment;
#: an unrelated program that inherits the variable, through ``subprocess`` say, ignores
#: it, because it is no ``multiprocessing`` child).
PROGRAM_REGION_ENV = "_SHMARENA_PROGRAM_REGION"
#: Environment variable naming the directory of new default regions (default
#: ``/dev/shm``, else the temporary directory); ``collect_default_regions`` and
#: ``shmarena gc`` look there too.
REGION_DIR_ENV = "SHMARENA_REGION_DIR"
#: Environment variable with the size in bytes of a new default region.
REGION_SIZE_ENV = "SHMARENA_REGION_SIZE"
#: Size of a new default region (at most half the free space of its file system): a
#: sparse file, so only pages in use take memory.
DEFAULT_REGION_SIZE = 8 << 30

_default = None
_lock = _threading.Lock()


def open_region(path, allow_shared=False):
    """The region at ``path``. Opening a file again in a process gives the same handle
    (the native module keeps one per file), so the process is one participant of it.
    ``allow_shared`` as for :class:`Region`: a file another user can write is refused
    without it (regions pickle as ``open_region(path, allow_shared)``)."""
    return Region(_os.fspath(path), allow_shared=allow_shared)


def _remove_at_exit(path, creator):
    # Only the creating process removes the name: a child exiting (or a child that
    # inherited this finalizer through fork) never pulls the region from under the others.
    if _os.getpid() == creator:
        try:
            _os.unlink(path)
        except OSError:
            pass


def _after_fork_in_child():
    # A lock another thread held at the fork would stay locked in the child.
    global _lock
    _lock = _threading.Lock()


_os.register_at_fork(after_in_child=_after_fork_in_child)


def _default_directory():
    directory = _os.environ.get(REGION_DIR_ENV)
    if directory:
        return directory
    return "/dev/shm" if _os.path.isdir("/dev/shm") else _tempfile.gettempdir()


def collect_default_regions(directory=None, dry_run=False):
    """Removes the default regions that killed programs left behind: files named
    ``shmarena-py-<pid>-<hex>`` in ``directory`` (default: where default regions go) that
    were created as a default region, that no live process has open, and whose creating
    process is gone; and stale staging files of such regions. A region a live process has
    open (or is opening), whose creator still runs, or any other file is never touched;
    a file that is not a sound region is kept. Protection starts when a process opens the
    region: a child of a killed program that has not opened it yet (a spawn or forkserver
    child still starting) finds it gone if the sweep comes first. Stale staging files are
    removed only once they are a minute old. With ``dry_run`` nothing is removed. The
    sweep holds the GIL.
    Returns one ``(path, action, reason)`` per file of those names, ``action`` being
    ``"removed"``, ``"would remove"`` or ``"kept"``. Each program that creates a default
    region runs it first; the ``shmarena gc`` command does the same."""
    if directory is None:
        directory = _default_directory()
    return _shmarena.collect_default_regions(_os.fspath(directory), dry_run)


def _default_size(directory):
    # The file is sparse, but a tmpfs fills up as pages are touched, and touching a page
    # the tmpfs has no room for kills the process (SIGBUS): stay within half its free space
    # (a container's /dev/shm is often 64 MiB).
    try:
        stat = _os.statvfs(directory)
        free = stat.f_bavail * stat.f_frsize
    except OSError:
        return DEFAULT_REGION_SIZE
    return max(min(DEFAULT_REGION_SIZE, free // 2) & ~0xFFFFF, 4 << 20)


def default_region():
    """The program's region: the one named by ``$SHMARENA_REGION`` if set; in a
    ``multiprocessing`` child, its program's; else a new one that this process creates
    (and removes when it exits) and its ``multiprocessing`` children use."""
    global _default
    if _default is not None:
        return _default
    with _lock:
        if _default is not None:
            return _default
        path = _os.environ.get(REGION_ENV)
        if not path and _mp.parent_process() is not None:
            path = _os.environ.get(PROGRAM_REGION_ENV)
        if path:
            region = Region(path)
        else:
            directory = _default_directory()
            # Killed programs' default regions go first (a sweep that fails costs nothing
            # but the space it would have freed).
            try:
                collect_default_regions(directory)
            except Exception:  # noqa: BLE001
                pass
            path = _os.path.join(
                directory, f"shmarena-py-{_os.getpid()}-{_secrets.token_hex(4)}"
            )
            size = int(_os.environ.get(REGION_SIZE_ENV, 0)) or _default_size(directory)
            region = Region(path, size, _collectable=True)
            _os.environ[PROGRAM_REGION_ENV] = path
            # A multiprocessing child skips atexit (it leaves with os._exit) but runs
            # multiprocessing's finalizers; the main process runs them at exit too.
            _mp_util.Finalize(None, _remove_at_exit, args=(path, _os.getpid()), exitpriority=0)
        _default = region
        return region


def _place(region, name, kind):
    """The region and the object name to use (a fresh unique name when none is given)."""
    region = default_region() if region is None else region
    if name is None:
        name = f"py.{kind}.{region.next_id()}"
    return region, name


def _typecode(typecode_or_type):
    # ctypes types (c_int, c_double, ...) carry their typecode in `_type_`.
    return getattr(typecode_or_type, "_type_", typecode_or_type)


def _is_ctypes_struct(typecode_or_type):
    return isinstance(typecode_or_type, type) and issubclass(
        typecode_or_type, (_ctypes.Structure, _ctypes.Union)
    )


def _check_lock(lock):
    """The lock a synchronized object gets (None: its own RLock), as sharedctypes
    decides it."""
    if lock in (True, None):
        return None
    if not hasattr(lock, "acquire"):
        raise AttributeError(f"{lock!r} has no method 'acquire'")
    return lock


class _Synchronizing:
    """What ``multiprocessing.sharedctypes``' synchronized wrappers add to an object: the
    lock (``get_lock``, ``acquire``, ``release``, ``with``) and the raw object
    (``get_obj``). The lock is the one given, or an RLock in the object's region named
    after it (every handle, in every process, finds the same one)."""

    def _set_lock(self, lock):
        self._given_lock = lock
        self._lock = lock

    def get_lock(self):
        """The lock of this object."""
        if self._lock is None:
            self._lock = RLock(name=f"{self.name}.lock", region=self.region)
        return self._lock

    def acquire(self, *args, **kwargs):
        return self.get_lock().acquire(*args, **kwargs)

    def release(self):
        return self.get_lock().release()

    def __enter__(self):
        return self.get_lock().__enter__()

    def __exit__(self, *args):
        return self.get_lock().__exit__(*args)


class Synchronized(_Synchronizing, _shmarena.Value):
    """``Value(...)`` with a lock (``multiprocessing.sharedctypes.Synchronized``): the
    shared scalar of ``RawValue`` plus ``get_lock()`` and ``get_obj()`` (that raw
    value). ``add``, ``fetch_add`` and ``compare_exchange`` are atomic without the lock."""

    def __new__(cls, region, name, typecode, initial=None, lock=None):
        self = super().__new__(cls, region, name, typecode, initial)
        self._set_lock(lock)
        return self

    def get_obj(self):
        """The raw value (no lock), sharing this one's memory."""
        return _shmarena.Value(self.region, self.name, self.typecode)

    def __reduce__(self):
        return (_synchronized, ("Value", self._given_lock, self.region, self.name, self.typecode))


class SynchronizedArray(_Synchronizing, _shmarena.Array):
    """``Array(...)`` with a lock (``multiprocessing.sharedctypes.SynchronizedArray``):
    the shared array of ``RawArray`` plus ``get_lock()`` and ``get_obj()``."""

    def __new__(cls, region, name, typecode, initializer, lock=None):
        self = super().__new__(cls, region, name, typecode, initializer)
        self._set_lock(lock)
        return self

    def get_obj(self):
        """The raw array (no lock), sharing this one's memory."""
        return _shmarena.Array(self.region, self.name, self.typecode, len(self))

    def __reduce__(self):
        return (
            _synchronized,
            ("Array", self._given_lock, self.region, self.name, self.typecode, len(self)),
        )


def _synchronized(kind, lock, region, name, *extra):
    if not isinstance(region, Region):
        region = open_region(region)
    cls = Synchronized if kind == "Value" else SynchronizedArray
    return cls(region, name, *extra, lock=lock)


# ctypes Structures (and Unions) in shared memory: a 'B' Array of the structure's bytes,
# seen through a subclass of the user's type made with from_buffer (so every field
# access reads and writes the shared bytes) that pickles as that Array, not as a copy.
_shared_struct_types: dict[type, type] = {}


def _struct_reduce(obj):
    return (_shared_struct, (type(obj).__bases__[0], obj._shmarena_bytes))


def _shared_struct(struct_type, shared_bytes):
    shared_type = _shared_struct_types.get(struct_type)
    if shared_type is None:
        shared_type = type(struct_type)(
            struct_type.__name__,
            (struct_type,),
            {
                "__module__": struct_type.__module__,
                "__qualname__": struct_type.__qualname__,
                "__reduce__": _struct_reduce,
            },
        )
        _shared_struct_types[struct_type] = shared_type
    if len(shared_bytes) != _ctypes.sizeof(struct_type):
        raise TypeError(
            f"object {shared_bytes.name!r} holds {len(shared_bytes)} bytes, "
            f"not a {struct_type.__name__} ({_ctypes.sizeof(struct_type)} bytes)"
        )
    obj = shared_type.from_buffer(shared_bytes)
    obj._shmarena_bytes = shared_bytes
    return obj


def _raw_struct(struct_type, args, name, region):
    region, name = _place(region, name, "value")
    initial = bytes(struct_type(*args))
    return _shared_struct(struct_type, _shmarena.Array(region, name, "B", initial))


# Arrays of structures: the same, through a subclass of StructType * length.
_shared_struct_array_types: dict[tuple[type, int], type] = {}


def _struct_array_reduce(obj):
    return (_shared_struct_array, (obj._type_, len(obj), obj._shmarena_bytes))


def _shared_struct_array(struct_type, length, shared_bytes):
    shared_type = _shared_struct_array_types.get((struct_type, length))
    if shared_type is None:
        array_type = struct_type * length
        shared_type = type(array_type)(
            array_type.__name__, (array_type,), {"__reduce__": _struct_array_reduce}
        )
        _shared_struct_array_types[(struct_type, length)] = shared_type
    if len(shared_bytes) != _ctypes.sizeof(shared_type):
        raise TypeError(
            f"object {shared_bytes.name!r} holds {len(shared_bytes)} bytes, not "
            f"{length} {struct_type.__name__} ({_ctypes.sizeof(shared_type)} bytes)"
        )
    obj = shared_type.from_buffer(shared_bytes)
    obj._shmarena_bytes = shared_bytes
    return obj


def _raw_struct_array(struct_type, size_or_initializer, name, region):
    if isinstance(size_or_initializer, int):
        length = size_or_initializer
        if length <= 0:
            raise ValueError("an Array of structures needs at least one element")
        initial = bytes(_ctypes.sizeof(struct_type) * length)
    else:
        items = list(size_or_initializer)
        length = len(items)
        if length == 0:
            raise ValueError("an Array of structures needs at least one element")
        initial = bytes((struct_type * length)(*items))
    region, name = _place(region, name, "array")
    return _shared_struct_array(
        struct_type, length, _shmarena.Array(region, name, "B", initial)
    )


class _SynchronizedShared(_Synchronizing):
    """A ctypes object in the region, with a lock."""

    def __init__(self, obj, lock=None):
        self._obj = obj
        self._set_lock(lock)

    @property
    def name(self):
        return self._obj._shmarena_bytes.name

    @property
    def region(self):
        return self._obj._shmarena_bytes.region

    def get_obj(self):
        """The shared ctypes object itself (read and written without the lock)."""
        return self._obj

    def __repr__(self):
        return f"<{type(self).__name__} wrapper for {self._obj!r}>"


class SynchronizedStruct(_SynchronizedShared):
    """``Value(StructureType, ...)`` with a lock: each field of the shared structure is an
    attribute read and written under the lock (as ``multiprocessing.sharedctypes``'
    wrapper); ``get_obj()`` is the structure itself."""

    def __reduce__(self):
        return (_synchronized_struct, (self._obj, self._given_lock))


class SynchronizedStructArray(_SynchronizedShared):
    """``Array(StructureType, ...)`` with a lock: ``len``, ``a[i]`` (a structure viewing
    the shared bytes), ``a[i] = structure`` and slices under the lock, as
    ``multiprocessing.sharedctypes.SynchronizedArray``; ``get_obj()`` is the ctypes
    array itself."""

    def __len__(self):
        return len(self._obj)

    def __getitem__(self, index):
        with self.get_lock():
            return self._obj[index]

    def __setitem__(self, index, value):
        with self.get_lock():
            self._obj[index] = value

    def __reduce__(self):
        return (SynchronizedStructArray, (self._obj, self._given_lock))


_synchronized_struct_types: dict[type, type] = {}


def _field(field):
    def get(self):
        with self.get_lock():
            return getattr(self._obj, field)

    def set(self, value):
        with self.get_lock():
            setattr(self._obj, field, value)

    return property(get, set)


def _synchronized_struct(obj, lock=None):
    struct_type = type(obj).__bases__[0]
    cls = _synchronized_struct_types.get(struct_type)
    if cls is None:
        fields = {field[0]: _field(field[0]) for field in struct_type._fields_}
        cls = type(f"Synchronized{struct_type.__name__}", (SynchronizedStruct,), fields)
        _synchronized_struct_types[struct_type] = cls
    return cls(obj, lock)


def Value(typecode_or_type, *args, lock=True, name=None, region=None):  # noqa: N802
    """``multiprocessing.Value``: a shared scalar (``.value``) with a lock, as
    ``multiprocessing.sharedctypes.Value``: ``lock=True`` (or None) gives it an RLock of
    its own, a lock object gives it that lock (``get_lock()`` returns it), ``lock=False``
    gives the raw value (``RawValue``: no ``get_lock``). ``add``, ``fetch_add`` and
    ``compare_exchange`` are atomic without any lock. A ctypes ``Structure`` type gives a
    shared structure whose fields are attributes."""
    if lock is False:
        return RawValue(typecode_or_type, *args, name=name, region=region)
    lock = _check_lock(lock)
    if _is_ctypes_struct(typecode_or_type):
        return _synchronized_struct(_raw_struct(typecode_or_type, args, name, region), lock)
    region, name = _place(region, name, "value")
    initial = args[0] if args else None
    return Synchronized(region, name, _typecode(typecode_or_type), initial, lock=lock)


def RawValue(typecode_or_type, *args, name=None, region=None):  # noqa: N802
    """``multiprocessing.RawValue``: a shared scalar without a lock (a ctypes
    ``Structure`` type: the shared structure itself)."""
    if _is_ctypes_struct(typecode_or_type):
        return _raw_struct(typecode_or_type, args, name, region)
    region, name = _place(region, name, "value")
    initial = args[0] if args else None
    return _shmarena.Value(region, name, _typecode(typecode_or_type), initial)


def Array(typecode_or_type, size_or_initializer, *, lock=True, name=None, region=None):  # noqa: N802
    """``multiprocessing.Array``: a fixed-length shared array with slices, atomic
    ``fetch_add``/``compare_exchange`` per element and the buffer protocol
    (``numpy.frombuffer(arr, dtype)`` is a writable view). ``lock`` as for ``Value``:
    ``lock=False`` gives the raw array (``RawArray``)."""
    if lock is False:
        return RawArray(typecode_or_type, size_or_initializer, name=name, region=region)
    lock = _check_lock(lock)
    if _is_ctypes_struct(typecode_or_type):
        raw = _raw_struct_array(typecode_or_type, size_or_initializer, name, region)
        return SynchronizedStructArray(raw, lock)
    region, name = _place(region, name, "array")
    return SynchronizedArray(
        region, name, _typecode(typecode_or_type), size_or_initializer, lock=lock
    )


def RawArray(typecode_or_type, size_or_initializer, *, name=None, region=None):  # noqa: N802
    """``multiprocessing.RawArray``: a shared array without a lock (of a ctypes
    ``Structure`` type: a ctypes array of the structures, in the region)."""
    if _is_ctypes_struct(typecode_or_type):
        return _raw_struct_array(typecode_or_type, size_or_initializer, name, region)
    region, name = _place(region, name, "array")
    return _shmarena.Array(region, name, _typecode(typecode_or_type), size_or_initializer)


def Lock(*, name=None, region=None):  # noqa: N802
    """A Lock with an owner: when its holder dies, the next ``acquire`` gets it and
    raises ``OwnerDiedError`` (holding it) instead of waiting forever. As
    ``multiprocessing.Lock``, any thread of any process may release it."""
    region, name = _place(region, name, "lock")
    return _shmarena.Lock(region, name)


def RLock(*, name=None, region=None):  # noqa: N802
    """``multiprocessing.RLock``: reentrant for the holding thread."""
    region, name = _place(region, name, "rlock")
    return _shmarena.RLock(region, name)


def Condition(lock=None, *, name=None, region=None):  # noqa: N802
    """``multiprocessing.Condition`` over ``lock`` (a new RLock by default)."""
    region, name = _place(region, name, "condition")
    if lock is None:
        lock = RLock(region=region)
    return _shmarena.Condition(region, name, lock)


def Event(*, name=None, region=None):  # noqa: N802
    """``multiprocessing.Event``."""
    region, name = _place(region, name, "event")
    return _shmarena.Event(region, name)


def Semaphore(value=1, *, reclaim=False, name=None, region=None):  # noqa: N802
    """``multiprocessing.Semaphore``: permits have no owner, as in Python. With
    ``reclaim=True`` each permit names its holder and a killed holder's permits come back
    (for ``with semaphore:`` code; not for a semaphore one process releases and another
    acquires). Holds at most ``max(value, 64)`` permits (releases beyond raise
    ``ValueError``)."""
    region, name = _place(region, name, "semaphore")
    return _shmarena.Semaphore(region, name, value, False, None, reclaim)


def BoundedSemaphore(value=1, *, reclaim=False, name=None, region=None):  # noqa: N802
    """``multiprocessing.BoundedSemaphore`` (``reclaim`` as for ``Semaphore``)."""
    region, name = _place(region, name, "semaphore")
    return _shmarena.Semaphore(region, name, value, True, None, reclaim)


def Barrier(parties, action=None, timeout=None, *, name=None, region=None):  # noqa: N802
    """``multiprocessing.Barrier``; a party that dies while others wait breaks it
    (``threading.BrokenBarrierError``). ``action`` runs in the last party to arrive, before
    any party leaves ``wait()`` (in that party's process: handles passed to other processes
    carry it); if it raises, the barrier breaks."""
    region, name = _place(region, name, "barrier")
    return _shmarena.Barrier(region, name, parties, action, timeout)


#: Slots an unbounded Queue (``maxsize <= 0``) starts with; it grows past them.
DEFAULT_QUEUE_SIZE = 64


def Queue(maxsize=0, *, max_item_bytes=256, pickle=True, name=None, region=None):  # noqa: N802
    """``multiprocessing.Queue``: a lock-free queue in shared memory (no feeder thread, no
    pipe), unbounded when ``maxsize <= 0`` (it grows as items arrive, as far as the region
    allows), else of ``maxsize`` slots. Items are pickled (``pickle=False``: plain types
    only); up to ``max_item_bytes`` lie in the slot, larger ones out of line."""
    region, name = _place(region, name, "queue")
    if maxsize > 0:
        return _shmarena.Queue(region, name, maxsize, max_item_bytes, pickle)
    return _shmarena.Queue(region, name, DEFAULT_QUEUE_SIZE, max_item_bytes, pickle,
                           unbounded=True)


SimpleQueue = Queue


class JoinableQueue:
    """``multiprocessing.JoinableQueue``: a Queue whose consumers call ``task_done()`` for
    every item they got, so that ``join()`` can wait until all of them are processed."""

    def __init__(self, maxsize=0, *, max_item_bytes=256, pickle=True, name=None, region=None,
                 _parts=None):
        if _parts is None:
            region, name = _place(region, name, "joinable-queue")
            queue = Queue(maxsize, max_item_bytes=max_item_bytes, pickle=pickle, name=name,
                          region=region)
            unfinished = Value("q", 0, name=f"{name}.unfinished", region=region)
            condition = Condition(Lock(name=f"{name}.lock", region=region),
                                  name=f"{name}.condition", region=region)
            _parts = (queue, unfinished, condition)
        self._queue, self._unfinished, self._condition = _parts
        # The process that closed this handle (None: open), as for Queue.
        self._closed_by = None

    def _check_closed(self):
        if self._closed_by == _os.getpid():
            raise ValueError(f"Queue {self!r} is closed")

    def put(self, item, block=True, timeout=None):
        self._check_closed()
        # Counted first, so join() never sees an item as done before it is taken.
        self._unfinished.add(1)
        try:
            self._queue.put(item, block, timeout)
        except BaseException:
            # Uncounted under the condition's lock, waking join() if that was the last:
            # a join() may have started while this put waited.
            with self._condition:
                if self._unfinished.add(-1) == 0:
                    self._condition.notify_all()
            raise

    def put_nowait(self, item):
        self.put(item, False)

    def get(self, block=True, timeout=None):
        self._check_closed()
        return self._queue.get(block, timeout)

    def get_nowait(self):
        return self.get(False)

    def task_done(self):
        """Says that an item taken with get() is processed."""
        with self._condition:
            if self._unfinished.value <= 0:
                raise ValueError("task_done() called too many times")
            if self._unfinished.add(-1) == 0:
                self._condition.notify_all()

    def join(self):
        """Waits until every item put has been taken and marked done."""
        with self._condition:
            self._condition.wait_for(lambda: self._unfinished.value == 0)

    def qsize(self):
        return self._queue.qsize()

    def empty(self):
        return self._queue.empty()

    def full(self):
        return self._queue.full()

    def close(self):
        """Closes this handle in this process: ``put`` and ``get`` raise ``ValueError``
        from now on (other processes' handles stay open; there is no feeder thread)."""
        self._closed_by = _os.getpid()
        self._queue.close()

    def join_thread(self):
        """Nothing to join (there is no feeder thread); ``AssertionError`` unless
        ``close()`` was called first, as in ``multiprocessing``."""
        self._queue.join_thread()

    def cancel_join_thread(self):
        """Nothing to cancel (kept for ``multiprocessing`` code)."""

    def __reduce__(self):
        return (_joinable_queue, (self._queue, self._unfinished, self._condition))

    def __repr__(self):
        return f"<shmarena.JoinableQueue {self._queue.name!r} unfinished={self._unfinished.value}>"


def _joinable_queue(queue, unfinished, condition):
    return JoinableQueue(_parts=(queue, unfinished, condition))


class Namespace:
    """``Manager().Namespace()``: attributes stored in a shared dict. As with the
    manager's proxy, a name starting with ``_`` is an attribute of this object only, in
    this process: never shared, nor pickled."""

    def __init__(self, _dict=None, **kwargs):
        if _dict is None:
            _dict = Manager().dict(max_key_bytes=64, max_value_bytes=256)
        object.__setattr__(self, "_dict", _dict)
        for key, value in kwargs.items():
            # The manager's Namespace(**kwargs) stores every one, even an `_` name
            # (which its proxy then never shows).
            _dict[key] = value

    def __getattr__(self, attribute):
        # Only called for names not found on the object itself.
        if attribute.startswith("_"):
            return object.__getattribute__(self, attribute)
        try:
            return object.__getattribute__(self, "_dict")[attribute]
        except KeyError:
            raise AttributeError(attribute) from None

    def __setattr__(self, attribute, value):
        if attribute.startswith("_"):
            object.__setattr__(self, attribute, value)
            return
        self._dict[attribute] = value

    def __delattr__(self, attribute):
        if attribute.startswith("_"):
            object.__delattr__(self, attribute)
            return
        try:
            del self._dict[attribute]
        except KeyError:
            raise AttributeError(attribute) from None

    def __reduce__(self):
        return (Namespace, (self._dict,))

    def __repr__(self):
        # As multiprocessing.managers.Namespace: the public attributes, by name.
        shown = sorted(f"{k}={v!r}" for k, v in self._dict.items() if not str(k).startswith("_"))
        return "Namespace(" + ", ".join(shown) + ")"


class Manager:
    """``multiprocessing.Manager()`` with no manager process: every object it makes lives
    in the region (the default one unless ``region`` is given) and is used directly.

    dict, list and set grow as entries are added (``capacity`` is the room they start
    with). Item sizes are keyword arguments:
    ``max_key_bytes`` / ``max_value_bytes`` / ``max_item_bytes`` (a str's UTF-8 bytes or
    a bytes' length; ints, floats, bools and None always fit). They are the room kept in
    the slot, not limits: larger keys, values, items and members are kept out of line.
    They hold None, bool, int, float, str, bytes and tuples of them; ``pickle=True``
    stores any picklable object (dict keys then compare by their pickled bytes).
    A full region raises ``MemoryError``; nothing is truncated.
    """

    def __init__(self, region=None):
        self._region = region

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def start(self, *args, **kwargs):
        """Nothing to start: there is no manager process."""

    def shutdown(self):
        """Nothing to stop: the objects live on in the region."""

    def join(self, timeout=None):
        """Nothing to join."""

    @property
    def address(self):
        """The region's path (there is no server address)."""
        return self._place_region().path

    def _place_region(self):
        return default_region() if self._region is None else self._region

    def dict(self, *args, capacity=64, max_key_bytes=64, max_value_bytes=64,
             pickle=False, name=None, **kwargs):
        """A shared dict, filled like ``dict(*args, **kwargs)``."""
        region, name = _place(self._region, name, "dict")
        shared = _shmarena.Dict(region, name, capacity, max_key_bytes, max_value_bytes, pickle)
        if args or kwargs:
            shared.update(*args, **kwargs)
        return shared

    def list(self, sequence=(), *, capacity=64, max_item_bytes=256, pickle=False, name=None):
        """A shared append-only list holding ``sequence``."""
        region, name = _place(self._region, name, "list")
        shared = _shmarena.List(region, name, capacity, max_item_bytes, pickle)
        shared.extend(sequence)
        return shared

    def set(self, iterable=(), *, capacity=64, max_item_bytes=64, pickle=False, name=None):
        """A shared set holding ``iterable``'s members."""
        region, name = _place(self._region, name, "set")
        shared = _shmarena.Set(region, name, capacity, max_item_bytes, pickle)
        shared.update(iterable)
        return shared

    def Namespace(self, **kwargs):  # noqa: N802
        """A shared namespace with ``kwargs`` as its first attributes."""
        return Namespace(self.dict(max_key_bytes=64), **kwargs)

    def Lock(self, *, name=None):  # noqa: N802
        return Lock(name=name, region=self._region)

    def RLock(self, *, name=None):  # noqa: N802
        return RLock(name=name, region=self._region)

    def Condition(self, lock=None, *, name=None):  # noqa: N802
        return Condition(lock, name=name, region=self._region)

    def Event(self, *, name=None):  # noqa: N802
        return Event(name=name, region=self._region)

    def Semaphore(self, value=1, *, reclaim=False, name=None):  # noqa: N802
        return Semaphore(value, reclaim=reclaim, name=name, region=self._region)

    def BoundedSemaphore(self, value=1, *, reclaim=False, name=None):  # noqa: N802
        return BoundedSemaphore(value, reclaim=reclaim, name=name, region=self._region)

    def Barrier(self, parties, action=None, timeout=None, *, name=None):  # noqa: N802
        return Barrier(parties, action, timeout, name=name, region=self._region)

    def Queue(self, maxsize=0, **kwargs):  # noqa: N802
        return Queue(maxsize, region=self._region, **kwargs)

    def JoinableQueue(self, maxsize=0, **kwargs):  # noqa: N802
        return JoinableQueue(maxsize, region=self._region, **kwargs)

    def Value(self, typecode, value, lock=True, *, name=None):  # noqa: N802
        """A shared Value with the proxy's ``get()`` and ``set(value)`` as well as
        ``.value``."""
        return Value(typecode, value, name=name, region=self._region)

    def Array(self, typecode, sequence, lock=True, *, name=None):  # noqa: N802
        return Array(typecode, sequence, name=name, region=self._region)


def _rebuild(kind, region, name, *extra):
    """Opens an object again in the process that unpickles it (``region``: the unpickled
    region, or its path)."""
    if not isinstance(region, Region):
        region = open_region(region)
    if kind == "Value":
        return _shmarena.Value(region, name, extra[0])
    if kind == "Array":
        return _shmarena.Array(region, name, extra[0], extra[1])
    if kind == "Dict":
        return _shmarena.Dict(region, name, None, pickle=extra[0])
    if kind == "List":
        return _shmarena.List(region, name, None, pickle=extra[0])
    if kind == "Set":
        return _shmarena.Set(region, name, None, pickle=extra[0])
    if kind == "Queue":
        return _shmarena.Queue(region, name, None, pickle=extra[0])
    if kind == "Lock":
        return _shmarena.Lock(region, name)
    if kind == "RLock":
        return _shmarena.RLock(region, name)
    if kind == "Condition":
        return _shmarena.Condition(region, name, extra[0])
    if kind == "Event":
        return _shmarena.Event(region, name)
    if kind == "Semaphore":
        return _shmarena.Semaphore(region, name, extra[0], extra[1], extra[2], extra[3])
    if kind == "Barrier":
        return _shmarena.Barrier(region, name, extra[0], extra[1], extra[2])
    raise CorruptError(f"unknown shmarena object kind {kind!r}")


_abc.MutableMapping.register(_shmarena.Dict)
_abc.Sequence.register(_shmarena.List)
_abc.Set.register(_shmarena.Set)
