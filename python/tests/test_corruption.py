"""The region is untrusted input: random bytes written over a live region make operations
fail with exceptions, never crash or hang the process."""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    r'''
    import os, random, signal, sys
    import shmarena

    class Alarm(Exception):
        pass

    def on_alarm(signum, frame):
        raise Alarm()

    signal.signal(signal.SIGALRM, on_alarm)
    seed = int(sys.argv[1])
    rng = random.Random(seed)
    path = f"/dev/shm/shmarena-pytest-corrupt-{os.getpid()}"
    region = shmarena.Region(path, 8 << 20)
    try:
        manager = shmarena.Manager(region=region)
        d = manager.dict({i: "v" * (i % 40) for i in range(200)}, capacity=512)
        l = manager.list(range(100), capacity=256)
        s = manager.set(range(50), capacity=128)
        q = shmarena.Queue(64, region=region)
        for i in range(30):
            q.put((i, "x" * i))
        # Out-of-line keys, values, items and members, and an unbounded queue's rings.
        big = manager.dict({"k" * 100 + str(i): "V" * (300 + i) for i in range(40)})
        big_list = manager.list(["L" * 500] * 20)
        big_set = manager.set({"S" * 200 + str(i) for i in range(20)})
        unbounded = shmarena.Queue(region=region)
        for i in range(40):
            unbounded.put("Q" * (300 + i))
        v = shmarena.Value("q", 7, region=region)
        a = shmarena.Array("d", range(50), region=region)
        lock = shmarena.Lock(region=region)
        size = os.path.getsize(path)
        operations = [
            lambda: d[rng.randrange(250)],
            lambda: d.__setitem__(rng.randrange(250), "new"),
            lambda: d.pop(rng.randrange(250), None),
            lambda: list(d.items()),
            lambda: d.add("counter", 1),
            lambda: l[rng.randrange(-120, 120)],
            lambda: l.append(rng.random()),
            lambda: l.reverse(),
            lambda: list(l),
            lambda: s.add(rng.randrange(80)),
            lambda: list(s),
            lambda: q.put(rng.random(), timeout=0.05),
            lambda: q.get(timeout=0.05),
            lambda: v.add(1),
            lambda: a[rng.randrange(50)],
            lambda: a.fetch_add(rng.randrange(50), 1.5),
            lambda: lock.acquire(timeout=0.05) and lock.release(),
            lambda: big["k" * 100 + str(rng.randrange(50))],
            lambda: big.__setitem__("k" * 100 + str(rng.randrange(50)), "W" * rng.randrange(1000)),
            lambda: big.pop("k" * 100 + str(rng.randrange(50)), None),
            lambda: list(big.items()),
            lambda: big_list[rng.randrange(20)],
            lambda: big_list.append("A" * 400),
            lambda: list(big_list),
            lambda: big_set.add("S" * 200 + str(rng.randrange(40))),
            lambda: big_set.discard("S" * 200 + str(rng.randrange(40))),
            lambda: list(big_set),
            lambda: unbounded.put("P" * rng.randrange(600), timeout=0.05),
            lambda: unbounded.get(timeout=0.05),
            lambda: unbounded.qsize(),
        ]
        survived = 0
        with open(path, "r+b") as f:
            for round_ in range(150):
                for _ in range(rng.randrange(1, 16)):
                    # Past the header (the handle validated it once and never reads it
                    # again): the participant table, catalog and object bodies.
                    # Mostly where the objects are (the arena fills from its start).
                    end = size if rng.random() < 0.2 else min(size, 1 << 20)
                    f.seek(rng.randrange(4096, end))
                    f.write(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9))))
                f.flush()
                for op in rng.sample(operations, len(operations)):
                    signal.setitimer(signal.ITIMER_REAL, 2.0)
                    try:
                        op()
                    except Alarm:
                        pass  # a wait on a lock word forged to name a live owner
                    except Exception:  # noqa: BLE001 - every failure must be an exception
                        pass
                    finally:
                        signal.setitimer(signal.ITIMER_REAL, 0)
                survived += 1
        print("survived", survived)
    finally:
        region.unlink()
    '''
)


def test_random_corruption_raises_and_never_crashes():
    for seed in range(4):
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(seed)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, (seed, done.returncode, done.stderr[-2000:])
        assert done.stdout.strip() == "survived 150"


def test_a_stored_str_that_is_not_utf8_raises_corrupt_error(tmp_path):
    import mmap

    import shmarena

    region = shmarena.Region(str(tmp_path / "utf8"), 4 << 20)
    manager = shmarena.Manager(region=region)
    d = manager.dict(capacity=16)
    d["short"] = "MARKERshort"
    d["long"] = "MARKERlong" + "x" * 500  # out of line
    with open(region.path, "r+b") as file, mmap.mmap(file.fileno(), 0) as view:
        for marker in (b"MARKERshort", b"MARKERlong"):
            at = view.find(marker)
            assert at >= 0
            view[at] = 0xFF  # never a UTF-8 byte
    for key in ("short", "long"):
        with pytest.raises(shmarena.CorruptError, match="not UTF-8"):
            d[key]
    d["short"] = "fine again"
    assert d["short"] == "fine again"
