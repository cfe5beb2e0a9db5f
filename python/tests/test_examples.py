"""The multiprocessing examples run with only the import line changed and print exactly
what they print on Python's own multiprocessing, under fork and under spawn."""

import glob
import os
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "examples")
SCRIPTS = sorted(glob.glob(os.path.join(EXAMPLES, "*.py")))


def run(script, method, env=None):
    """The script's output; asserts it succeeded and left no default region behind."""
    with subprocess.Popen(
        [sys.executable, script, method],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    # The program's default region (named after its first process) is gone once that
    # process exits.
    left = [n for n in os.listdir("/dev/shm") if n.startswith(f"shmarena-py-{process.pid}-")]
    assert left == []
    return out


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
@pytest.mark.parametrize("script", SCRIPTS, ids=os.path.basename)
def test_example_prints_what_multiprocessing_prints(script, method, tmp_path):
    with open(script, encoding="utf-8") as f:
        source = f.read()
    assert "from multiprocessing import" in source
    changed = tmp_path / os.path.basename(script)
    changed.write_text(
        source.replace("from multiprocessing import", "from shmarena import", 1),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "SHMARENA_REGION"}
    ours = run(str(changed), method, env)
    expected_file = script[: -len(".py")] + ".expected"
    if os.path.exists(expected_file):
        # An example of something this Python's multiprocessing lacks (Manager().set()
        # arrived in 3.14): compare with the output it gives there.
        with open(expected_file, encoding="utf-8") as f:
            expected = f.read()
    else:
        expected = run(script, method, env)
    assert ours == expected
