#!/usr/bin/env python3
"""CPython's own multiprocessing test suite, run against shmarena.

Imports the running interpreter's ``test._test_multiprocessing`` (the file CPython's
developers test ``multiprocessing`` with; never a copy in this tree) and builds its test
classes as its ``install_tests_in_module_dict`` does (``_TestQueue`` + a mixin +
``unittest.TestCase``), with shmarena's objects in the mixins:

* processes-type classes: the mixin's ``Queue``, ``JoinableQueue``, ``Lock``, ``RLock``,
  ``Semaphore``, ``BoundedSemaphore``, ``Condition``, ``Event``, ``Barrier``, ``Value``,
  ``Array``, ``RawValue`` and ``RawArray`` are shmarena's (``Process`` stays
  ``multiprocessing.Process``, as shmarena re-exports it);
* manager-type classes: ``manager`` is ``shmarena.Manager()``.

Where a test calls the stdlib directly instead of the mixin, the module's names are
substituted as well: ``multiprocessing.Queue`` and ``multiprocessing.JoinableQueue``
(``test_timeout``, ``test_closed_queue_*``) and ``multiprocessing.sharedctypes.Value``
(imported as ``Value`` by the module, used by ``test_sharedctypes``). One check reads
the stdlib objects' private parts and is left out for shmarena (``_Adapted`` below:
``_TestCondition.check_invariant``, which CPython itself skips for managers).

Each start method (fork, spawn) runs in a fresh interpreter. Every test of the applicable
classes is listed as PASS, FAIL, SKIP (skipped by CPython's test itself), N/A (with the
reason, kept in ``NOT_APPLICABLE`` below) or KNOWN (an expected difference, in
``KNOWN_DIFFERENCES``); the classes not run are listed with their reason. Exit status 0
when nothing failed unexpectedly (or when the interpreter has no ``test`` package, said
on the output), 1 otherwise.

    python run.py                      # shmarena, fork and spawn
    python run.py --stock              # the same tests against stock multiprocessing
    python run.py --start-method spawn -k Containers -v
"""

import argparse
import faulthandler
import fnmatch
import operator
import os
import signal
import subprocess
import sys
import time
import types
import unittest

import multiprocessing

TARGET_ENV = "SHMARENA_CONFORMANCE_TARGET"
TARGET = os.environ.get(TARGET_ENV) or ("stock" if "--stock" in sys.argv else "shmarena")

try:
    from test import _test_multiprocessing as tm
except ImportError as error:  # e.g. a distribution's python without its test package
    tm = None
    IMPORT_ERROR = error

# The classes run, and for which types (CPython's ALLOWED_TYPES, less 'threads', which
# tests multiprocessing.dummy).
APPLICABLE = [
    "_TestQueue",
    "_TestLock",
    "_TestSemaphore",
    "_TestCondition",
    "_TestEvent",
    "_TestBarrier",
    "_TestValue",
    "_TestArray",
    "_TestContainers",
    "_TestSharedCTypes",
]
TYPES = ("processes", "manager")

# Classes of the module not run: what they test is not an object shmarena provides.
NOT_APPLICABLE_CLASSES = {
    "_TestProcess": "multiprocessing.Process itself (shmarena re-exports it unchanged)",
    "_TestSubclassingProcess": "multiprocessing.Process itself (re-exported unchanged)",
    "_TestPool": "multiprocessing.Pool (re-exported unchanged)",
    "_TestPoolWorkerErrors": "multiprocessing.Pool (re-exported unchanged)",
    "_TestPoolWorkerLifetime": "multiprocessing.Pool (re-exported unchanged)",
    "_TestMyManager": "the manager server process (BaseManager subclasses); shmarena has none",
    "_TestRemoteManager": "the manager server process over a socket; shmarena has none",
    "_TestManagerRestart": "restarting the manager server process; shmarena has none",
    "_TestConnection": "multiprocessing.connection (pipes and sockets), not provided",
    "_TestListener": "multiprocessing.connection.Listener, not provided",
    "_TestListenerClient": "multiprocessing.connection, not provided",
    "_TestPoll": "multiprocessing.connection, not provided",
    "_TestPicklingConnections": "multiprocessing.connection, not provided",
    "_TestHeap": "multiprocessing.heap, the stdlib's own allocator",
    "_TestSharedMemory": "multiprocessing.shared_memory (SharedMemory, ShareableList)",
    "_TestFinalize": "multiprocessing.util.Finalize",
    "_TestImportStar": "the stdlib's module list",
    "_TestLogging": "multiprocessing's logger",
    "_TestPollEintr": "multiprocessing.connection, not provided",
}

# Tests of the applicable classes that do not apply, as "type:Class.test" ('*': both).
NOT_APPLICABLE = {
    "*:_TestQueue.test_no_import_lock_contention":
        "runs a module of its own that uses the stdlib's Queue (its feeder thread and the"
        " import lock)",
    "processes:_TestQueue.test_queue_feeder_donot_stop_onexc":
        "the feeder thread pickling later: an unpicklable item is dropped with a traceback"
        " on stderr; shmarena pickles in put() and raises there",
    "processes:_TestQueue.test_queue_feeder_on_queue_feeder_error":
        "subclasses the stdlib's multiprocessing.queues.Queue to hook its feeder thread",
    "manager:_TestEvent.test_repr":
        "the manager proxy's repr (<EventProxy object, typeid 'Event' ...>); shmarena's"
        " Manager gives the object itself, no proxy",
}

# Expected failures, with why (none, when every applicable test passes).
KNOWN_DIFFERENCES = {}


def _lookup(table, type_, name):
    return table.get(f"{type_}:{name}") or table.get(f"*:{name}")


# --------------------------------------------------------------------------------------
# The mixins and the substitutions (module level: spawn children import this file as
# __mp_main__ and find the classes, whose methods they are sent, here).

if tm is not None and TARGET == "shmarena":
    import shmarena

    class ShmProcessesMixin(tm.ProcessesMixin):
        Queue = staticmethod(shmarena.Queue)
        JoinableQueue = staticmethod(shmarena.JoinableQueue)
        Lock = staticmethod(shmarena.Lock)
        RLock = staticmethod(shmarena.RLock)
        Semaphore = staticmethod(shmarena.Semaphore)
        BoundedSemaphore = staticmethod(shmarena.BoundedSemaphore)
        Condition = staticmethod(shmarena.Condition)
        Event = staticmethod(shmarena.Event)
        Barrier = staticmethod(shmarena.Barrier)
        Value = staticmethod(shmarena.Value)
        Array = staticmethod(shmarena.Array)
        RawValue = staticmethod(shmarena.RawValue)
        RawArray = staticmethod(shmarena.RawArray)

    class ShmManagerMixin(tm.ManagerMixin):
        # ManagerMixin's properties read self.manager.Queue, .list, .dict, ...

        @classmethod
        def setUpClass(cls):
            tm.BaseMixin.setUpClass.__func__(cls)
            cls.manager = shmarena.Manager()

        @classmethod
        def tearDownClass(cls):
            cls.manager.shutdown()
            cls.manager.join()
            cls.manager = None
            tm.BaseMixin.tearDownClass.__func__(cls)

    class _Multiprocessing(types.ModuleType):
        """multiprocessing as the test module sees it: its Queue and JoinableQueue are
        shmarena's, every other name is the stdlib's."""

        Queue = staticmethod(shmarena.Queue)
        JoinableQueue = staticmethod(shmarena.JoinableQueue)

        def __getattr__(self, name):
            return getattr(multiprocessing, name)

    tm.multiprocessing = _Multiprocessing("multiprocessing")
    tm.Value = shmarena.Value
    MIXINS = {"processes": ShmProcessesMixin, "manager": ShmManagerMixin}
elif tm is not None:
    MIXINS = {"processes": tm.ProcessesMixin, "manager": tm.ManagerMixin}
else:
    MIXINS = {}



class _Adapted:
    """Put before CPython's class: its few checks of the stdlib objects' private parts."""

    def check_invariant(self, cond):
        # _TestCondition's invariant reads multiprocessing.synchronize.Condition's private
        # semaphores (_sleeping_count, _woken_count, _wait_semaphore), and is skipped for
        # managers by CPython itself; shmarena's condition variable has none of them (the
        # tests' own sleeping/woken semaphores still count every waiter).
        if TARGET != "shmarena":
            super().check_invariant(cond)


CLASSES = []  # (type, base name, class)
for _name in APPLICABLE:
    _base = getattr(tm, _name, None)
    if _base is None:
        continue
    for _type in _base.ALLOWED_TYPES:
        if _type not in MIXINS:
            continue

        class _Temp(_Adapted, _base, MIXINS[_type], unittest.TestCase):
            pass

        _Temp.__name__ = _Temp.__qualname__ = "With" + _type.capitalize() + _name[1:]
        _Temp.__module__ = __name__
        globals()[_Temp.__name__] = _Temp
        CLASSES.append((_type, _name, _Temp))


# --------------------------------------------------------------------------------------
# One start method, in this interpreter.

class _Result(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.outcome = None

    def addSuccess(self, test):  # noqa: N802
        self.outcome = ("PASS", "")

    def addFailure(self, test, err):  # noqa: N802
        self.outcome = ("FAIL", self._exc_info_to_string(err, test))

    def addError(self, test, err):  # noqa: N802
        self.outcome = ("FAIL", self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):  # noqa: N802
        self.outcome = ("SKIP", reason)

    def addExpectedFailure(self, test, err):  # noqa: N802
        self.outcome = ("PASS", "expected failure")

    def addUnexpectedSuccess(self, test):  # noqa: N802
        self.outcome = ("FAIL", "unexpected success")


def _run_method(method, pattern, verbose):
    multiprocessing.set_start_method(method, force=True)
    tm.util.get_temp_dir()
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0, "N/A": 0, "KNOWN": 0}
    unexpected = []
    loader = unittest.TestLoader()
    for type_, name, cls in CLASSES:
        tests = [t for t in loader.getTestCaseNames(cls)
                 if not pattern or fnmatch.fnmatch(f"{type_}:{name}.{t}", f"*{pattern}*")]
        if not tests:
            continue
        runnable = []
        for test in tests:
            key = f"{name}.{test}"
            reason = TARGET == "shmarena" and _lookup(NOT_APPLICABLE, type_, key)
            if reason:
                counts["N/A"] += 1
                print(f"N/A   {method:5} {type_:9} {key}: {reason}", flush=True)
            else:
                runnable.append(test)
        if not runnable:
            continue
        try:
            cls.setUpClass()
        except unittest.SkipTest as skip:
            for test in runnable:
                counts["SKIP"] += 1
                print(f"SKIP  {method:5} {type_:9} {name}.{test}: {skip}", flush=True)
            continue
        try:
            for test in runnable:
                key = f"{name}.{test}"
                result = _Result()
                start = time.monotonic()
                # A hung test dumps every thread's stack and ends the run (as FAIL).
                faulthandler.dump_traceback_later(120, exit=True)
                try:
                    cls(test).run(result)
                finally:
                    faulthandler.cancel_dump_traceback_later()
                elapsed = time.monotonic() - start
                status, detail = result.outcome or ("FAIL", "no outcome reported")
                known = _lookup(KNOWN_DIFFERENCES, type_, key)
                if status == "FAIL" and known:
                    status, detail = "KNOWN", known
                counts[status] += 1
                line = f"{status:5} {method:5} {type_:9} {key} ({elapsed:.2f}s)"
                if status in ("SKIP", "KNOWN"):
                    line += f": {detail}"
                print(line, flush=True)
                if status == "FAIL":
                    unexpected.append(key)
                    if verbose:
                        print("      " + detail.replace("\n", "\n      "), flush=True)
                    else:
                        last = detail.strip().splitlines()[-1] if detail.strip() else ""
                        print(f"      {last}", flush=True)
        finally:
            cls.tearDownClass()
    return counts, unexpected


def _child_main(args):
    # Tests send SIGINT and expect KeyboardInterrupt: a run started with SIGINT ignored
    # (a background job of a shell without job control) gets Python's handler back.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    counts, unexpected = _run_method(args.child, args.k, args.verbose)
    print(f"counts {TARGET} {args.child}: "
          + ", ".join(f"{counts[k]} {k.lower()}" for k in counts), flush=True)
    # One machine-readable line for the parent.
    print("RESULT " + " ".join(f"{k}={v}" for k, v in counts.items()), flush=True)
    return 1 if unexpected else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start-method", action="append", choices=("fork", "spawn"),
                        help="start method (repeatable; default: fork and spawn)")
    parser.add_argument("--stock", action="store_true",
                        help="run against stock multiprocessing (the reference)")
    parser.add_argument("-k", help="only tests whose 'type:Class.test' contains this")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="full tracebacks of failures")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--list-not-applicable", action="store_true",
                        help="print the classes and tests not run, with why, and exit")
    args = parser.parse_args()

    version = ".".join(map(str, sys.version_info[:3]))
    if tm is None:
        print(f"conformance: skipped: Python {version} at {sys.executable} has no "
              f"test._test_multiprocessing ({IMPORT_ERROR}); install the interpreter's "
              "test package to run CPython's multiprocessing tests", flush=True)
        return 0
    if args.child:
        return _child_main(args)

    target = "stock" if args.stock else "shmarena"
    print(f"conformance: CPython {version}'s test._test_multiprocessing "
          f"({tm.__file__}) against {target}", flush=True)
    classes = {n: v for n, v in vars(tm).items() if isinstance(v, type)}
    mixed = sorted(n for n, v in classes.items()
                   if issubclass(v, tm.BaseTestCase) and v is not tm.BaseTestCase)
    misc = sorted(n for n, v in classes.items()
                  if issubclass(v, unittest.TestCase) and not issubclass(v, tm.BaseTestCase))
    for name in mixed:
        if name not in APPLICABLE:
            reason = NOT_APPLICABLE_CLASSES.get(name, "multiprocessing's own machinery")
            print(f"N/A   class {name}: {reason}")
    print(f"N/A   {len(misc)} other classes ({', '.join(misc[:3])}, ...): multiprocessing's"
          " own machinery (test_misc)")
    if args.list_not_applicable:
        for key, reason in NOT_APPLICABLE.items():
            print(f"N/A   {key}: {reason}")
        return 0

    totals = {}
    status = 0
    env = dict(os.environ, **{TARGET_ENV: target})
    for method in args.start_method or ["fork", "spawn"]:
        command = [sys.executable, os.path.abspath(__file__), "--child", method]
        if args.k:
            command += ["-k", args.k]
        if args.verbose:
            command.append("-v")
        start = time.monotonic()
        proc = subprocess.run(command, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout.splitlines():
            if line.startswith("RESULT "):
                for pair in line.split()[1:]:
                    key, value = pair.split("=")
                    totals[(method, key)] = int(value)
            else:
                print(line, flush=True)
        print(f"{method}: exit status {proc.returncode} "
              f"({time.monotonic() - start:.1f}s)", flush=True)
        if proc.returncode != 0:
            status = 1
    print()
    for method in args.start_method or ["fork", "spawn"]:
        print(f"{target} {method:5}: " + ", ".join(
            f"{totals.get((method, k), 0)} {k.lower()}"
            for k in ("PASS", "FAIL", "SKIP", "N/A", "KNOWN")))
    passed = sum(v for (m, k), v in totals.items() if k == "PASS")
    failed = sum(v for (m, k), v in totals.items() if k == "FAIL")
    skipped = sum(v for (m, k), v in totals.items() if k != "PASS" and k != "FAIL")
    if status and not failed:
        failed = 1  # a run that died (a hang, a crash) without a FAIL line
    print(f"conformance: {passed} passed, {failed} failed, {skipped} skipped")
    return status


if __name__ == "__main__":
    sys.exit(main())
