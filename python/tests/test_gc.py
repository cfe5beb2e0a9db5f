"""Cleanup after a killed program: a program whose main process is SIGKILLed leaves its
default region behind; the next program that creates a default region (or
``shmarena.collect_default_regions()``, as ``shmarena gc``) removes it once no live process
of the killed program has it open, and never removes the region of a live program.

Each test uses a directory of its own (``SHMARENA_REGION_DIR``), so no other program's
default regions in /dev/shm are looked at."""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import shmarena

# A program that creates its default region (a Value in it), optionally starts a
# multiprocessing child that uses it too, prints "<region path> <child pid or 0>", then
# sleeps until killed (a child sleeps at most a minute, in case the test fails to kill it).
PROGRAM = textwrap.dedent(
    """
    import multiprocessing, os, sys, time
    import shmarena

    def child(value):
        value.value += 1
        time.sleep(60)

    if __name__ == "__main__":
        method = sys.argv[1]
        value = shmarena.Value("i", 5)
        path = shmarena.default_region().path
        pid = 0
        if method != "none":
            ctx = multiprocessing.get_context(method)
            p = ctx.Process(target=child, args=(value,))
            p.start()
            pid = p.pid
            deadline = time.monotonic() + 30
            while value.value != 6 and time.monotonic() < deadline:
                time.sleep(0.01)
        print(path, pid, flush=True)
        if sys.argv[2] == "stay":
            time.sleep(60)
    """
)


@pytest.fixture
def region_dir(tmp_path_factory):
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    if base:
        directory = os.path.join(base, f"shmarena-gc-pytest-{os.getpid()}-{os.urandom(4).hex()}")
        os.mkdir(directory)
    else:
        directory = str(tmp_path_factory.mktemp("regions"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class Programs:
    """Starts programs with the test's region directory; kills what is left at the end."""

    def __init__(self, directory, script):
        self.directory = directory
        self.script = script
        self.pids = []
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in (shmarena.REGION_ENV, shmarena.PROGRAM_REGION_ENV)
        }
        self.env[shmarena.REGION_DIR_ENV] = directory
        self.env[shmarena.REGION_SIZE_ENV] = str(8 << 20)

    def start(self, method="none", stay=True):
        """Runs PROGRAM; returns (process, region path, child pid or None)."""
        proc = subprocess.Popen(
            [sys.executable, self.script, method, "stay" if stay else "exit"],
            stdout=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        self.pids.append(proc.pid)
        line = proc.stdout.readline().split()
        assert len(line) == 2, f"program said {line!r} (exit code {proc.poll()})"
        child = int(line[1]) or None
        if child:
            self.pids.append(child)
        return proc, line[0], child

    def run_to_end(self):
        """A program that creates its default region and exits normally: its region."""
        proc, path, _ = self.start(stay=False)
        assert proc.wait(30) == 0
        return path

    def cleanup(self):
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def programs(region_dir, tmp_path):
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    p = Programs(region_dir, str(script))
    try:
        yield p
    finally:
        p.cleanup()


def _kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def _wait_collectable(directory, path, timeout=10):
    """Waits until a dry run would remove ``path`` (a killed process's locks go when the
    kernel has closed its files; its pid may linger as a zombie of init's meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        verdicts = shmarena.collect_default_regions(directory, dry_run=True)
        if (path, "would remove") in [(os.fspath(p), a) for p, a, _ in verdicts]:
            return
        time.sleep(0.01)
    pytest.fail(f"{path} still not collectable: {verdicts}")


def _leftovers(directory):
    return sorted(n for n in os.listdir(directory) if n.startswith("shmarena-py-"))


def test_next_program_removes_a_killed_programs_region(programs, region_dir):
    proc, path, _ = programs.start()
    assert os.path.exists(path)
    _kill(proc)
    assert os.path.exists(path), "SIGKILL leaves the region (no exit handler ran)"
    own = programs.run_to_end()
    assert not os.path.exists(path), "the next program's sweep removed the leftover"
    assert not os.path.exists(own), "and its own region went at its exit"
    assert _leftovers(region_dir) == []


def test_collect_default_regions_lists_then_removes(programs, region_dir):
    proc, path, _ = programs.start()
    _kill(proc)
    dry = shmarena.collect_default_regions(region_dir, dry_run=True)
    assert [(os.fspath(p), action) for p, action, _ in dry] == [(path, "would remove")]
    assert os.path.exists(path)
    # The default directory comes from SHMARENA_REGION_DIR, as for the programs.
    os.environ[shmarena.REGION_DIR_ENV] = region_dir
    try:
        done = shmarena.collect_default_regions()
    finally:
        del os.environ[shmarena.REGION_DIR_ENV]
    assert [(os.fspath(p), action) for p, action, _ in done] == [(path, "removed")]
    assert "dead" in done[0][2]
    assert not os.path.exists(path)


def test_a_live_programs_region_is_never_removed(programs, region_dir):
    proc, path, _ = programs.start()
    for _ in range(3):
        programs.run_to_end()
    verdicts = shmarena.collect_default_regions(region_dir)
    assert [(os.fspath(p), action) for p, action, _ in verdicts] == [(path, "kept")]
    assert os.path.exists(path)
    _kill(proc)
    programs.run_to_end()
    assert not os.path.exists(path)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_live_child_of_a_killed_program_keeps_its_region(programs, region_dir, method):
    proc, path, child = programs.start(method)
    _kill(proc)  # the main process only: its child lives on, attached
    programs.run_to_end()
    verdicts = shmarena.collect_default_regions(region_dir)
    assert [(os.fspath(p), action) for p, action, _ in verdicts] == [(path, "kept")], verdicts
    assert os.path.exists(path)
    os.kill(child, signal.SIGKILL)
    _wait_collectable(region_dir, path)
    programs.run_to_end()
    assert not os.path.exists(path)
    assert _leftovers(region_dir) == []


def test_regions_a_program_names_are_never_removed(region_dir):
    # The default pattern, but created by the program itself: not marked collectable.
    named = os.path.join(region_dir, "shmarena-py-1-0123abcd")
    script = f"import shmarena; shmarena.Region({named!r}, 8 << 20)"
    subprocess.run([sys.executable, "-c", script], check=True)
    other = os.path.join(region_dir, "my-region")
    shutil.copyfile(named, other)
    os.chmod(other, 0o600)
    verdicts = shmarena.collect_default_regions(region_dir)
    assert [(os.fspath(p), a) for p, a, _ in verdicts] == [(named, "kept")]
    assert "not marked" in verdicts[0][2]
    assert os.path.exists(named) and os.path.exists(other)


def test_foreign_files_with_the_pattern_are_kept(region_dir):
    garbage = os.path.join(region_dir, "shmarena-py-1-00000000")
    with open(garbage, "wb") as f:
        f.write(os.urandom(8192))
    empty = os.path.join(region_dir, "shmarena-py-1-00000001")
    open(empty, "wb").close()
    verdicts = shmarena.collect_default_regions(region_dir)
    assert sorted((os.fspath(p), a) for p, a, _ in verdicts) == [
        (garbage, "kept"),
        (empty, "kept"),
    ]
    assert os.path.exists(garbage) and os.path.exists(empty)
