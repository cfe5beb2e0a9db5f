"""Helpers for the cross-process tests (importable by spawned children too)."""

import pytest


def run_process(ctx, target, *args, timeout=30):
    """Starts a process running target(*args), joins it with a timeout, and asserts that
    it exited cleanly (a hang fails the test instead of blocking forever)."""
    p = ctx.Process(target=target, args=args)
    p.start()
    p.join(timeout)
    if p.is_alive():
        p.kill()
        p.join(5)
        pytest.fail(f"child {target.__name__} did not finish within {timeout}s")
    assert p.exitcode == 0, f"child {target.__name__} exited with {p.exitcode}"
    return p


def join_all(processes, timeout=30):
    failures = []
    for p in processes:
        p.join(timeout)
        if p.is_alive():
            p.kill()
            p.join(5)
            failures.append(f"{p.name} hung")
        elif p.exitcode != 0:
            failures.append(f"{p.name} exit code {p.exitcode}")
    assert not failures, failures
