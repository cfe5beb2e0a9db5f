"""The conformance runner (tests/conformance/run.py) itself: it says so and succeeds where
the interpreter has no test package, lists what it does not run, and runs a selection.
(.ci/run runs it in full.)"""

import os
import subprocess
import sys

import pytest

RUNNER = os.path.join(os.path.dirname(__file__), "conformance", "run.py")


def _run(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, RUNNER, *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_no_test_package_is_a_clear_skip(tmp_path):
    # A `test` package without _test_multiprocessing shadows the interpreter's.
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "__init__.py").write_text("")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    result = _run(env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "conformance: skipped: Python" in result.stdout
    assert "has no test._test_multiprocessing" in result.stdout


def _has_test_package():
    try:
        import test._test_multiprocessing  # noqa: F401
    except ImportError:
        return False
    return True


needs_suite = pytest.mark.skipif(not _has_test_package(),
                                 reason="this interpreter has no test._test_multiprocessing")


@needs_suite
def test_lists_what_it_does_not_run():
    result = _run("--list-not-applicable")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "N/A   class _TestPool: multiprocessing.Pool (re-exported unchanged)" in result.stdout
    assert ("N/A   manager:_TestEvent.test_repr: the manager proxy's repr"
            in result.stdout)


@needs_suite
def test_a_selection_passes_under_fork_and_spawn():
    result = _run("-k", "_TestContainers.test_dict_iter")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS  fork  manager   _TestContainers.test_dict_iter" in result.stdout
    assert "PASS  spawn manager   _TestContainers.test_dict_iter" in result.stdout
    assert result.stdout.rstrip().endswith("conformance: 2 passed, 0 failed, 0 skipped")
