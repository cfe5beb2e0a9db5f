"""Shared fixtures for shmarena's Python tests: every test gets a fresh region of its
own in /dev/shm, removed afterwards, so no test depends on the default region."""

import multiprocessing
import os
import secrets
import signal

import pytest

import shmarena

REGION_SIZE = 64 << 20

# A run started with SIGINT ignored (a background job of a shell without job control)
# would have Python keep ignoring it, and the tests of Ctrl-C during a wait could never
# pass: give Python's own handler back, as an interactive start has it.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _new_path():
    directory = "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp"
    return os.path.join(directory, f"shmarena-pytest-{os.getpid()}-{secrets.token_hex(6)}")


@pytest.fixture
def region():
    path = _new_path()
    r = shmarena.Region(path, REGION_SIZE)
    try:
        yield r
    finally:
        try:
            r.unlink()
        except Exception:
            if os.path.exists(path):
                os.unlink(path)


@pytest.fixture
def manager(region):
    return shmarena.Manager(region=region)


@pytest.fixture
def fork_ctx():
    return multiprocessing.get_context("fork")


@pytest.fixture
def spawn_ctx():
    return multiprocessing.get_context("spawn")
