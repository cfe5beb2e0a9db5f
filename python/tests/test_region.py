"""Opening a region file another user can write: refused unless ``allow_shared=True``,
also through the per-process cache of open regions, and the choice travels with pickles."""

import os
import pickle
import shutil

import pytest

import shmarena

REGION_SIZE = 64 << 20  # the conftest fixture's


def _new_path():
    directory = "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp"
    return os.path.join(directory, f"shmarena-pytest-{os.getpid()}-{os.urandom(6).hex()}")


@pytest.fixture
def closed_copy(region):
    """A READY region file no process has open (a copy of the fixture's region)."""
    path = _new_path()
    shutil.copyfile(region.path, path)
    os.chmod(path, 0o600)
    try:
        yield path
    finally:
        if os.path.exists(path):
            os.unlink(path)


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666], ids=oct)
def test_group_or_other_writable_region_is_refused_unless_allow_shared(closed_copy, mode):
    os.chmod(closed_copy, mode)
    with pytest.raises(PermissionError, match="allow_shared") as raised:
        shmarena.Region(closed_copy)
    assert str(closed_copy) in str(raised.value)
    assert f"{mode:04o}" in str(raised.value)
    with pytest.raises(PermissionError):
        shmarena.Region(closed_copy, REGION_SIZE)  # open-or-create opens: refused too
    with pytest.raises(PermissionError):
        shmarena.open_region(closed_copy)
    shared = shmarena.Region(closed_copy, allow_shared=True)
    assert shared.allow_shared is True
    assert shared.size == REGION_SIZE


def test_kept_handle_is_checked_again_when_opened_without_allow_shared(region):
    # The process keeps one handle per file; asking for it again without allow_shared
    # checks the file's owner and mode again (it changed since the first open).
    os.chmod(region.path, 0o666)
    try:
        with pytest.raises(PermissionError, match="allow_shared"):
            shmarena.Region(region.path)
        assert shmarena.Region(region.path, allow_shared=True).allow_shared
    finally:
        os.chmod(region.path, 0o600)
    assert shmarena.Region(region.path).allow_shared is False


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file away")
def test_region_owned_by_another_user_is_refused_even_for_root(closed_copy):
    os.chown(closed_copy, 65534, 65534)
    with pytest.raises(PermissionError, match="uid 65534"):
        shmarena.Region(closed_copy)
    shmarena.Region(closed_copy, allow_shared=True)


def _value_of(value):
    return value.value


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickles_carry_allow_shared(region, closed_copy, protocol):
    assert pickle.loads(pickle.dumps(region, protocol)).allow_shared is False
    os.chmod(closed_copy, 0o660)
    shared = shmarena.Region(closed_copy, allow_shared=True)
    assert pickle.loads(pickle.dumps(shared, protocol)).allow_shared is True


def test_objects_of_a_shared_region_reach_a_spawned_worker(closed_copy, spawn_ctx):
    # The worker opens the region anew from the pickle: it must make the same choice.
    os.chmod(closed_copy, 0o660)
    shared = shmarena.Region(closed_copy, allow_shared=True)
    value = shmarena.Value("q", 7, region=shared)
    with spawn_ctx.Pool(1) as pool:
        assert pool.apply_async(_value_of, (value,)).get(timeout=60) == 7


def test_files_that_are_no_region_say_what_they_are(tmp_path):
    for path, what in [
        ("/dev/zero", "character device"),
        (str(tmp_path), "directory"),
        ("/proc/self/status", "magic number"),
    ]:
        with pytest.raises(shmarena.Error, match=what) as raised:
            shmarena.Region(path)
        assert "not a shmarena region" in str(raised.value)
        assert "unlink" not in str(raised.value)


def test_a_stored_reference_cannot_lift_allow_shared(region):
    # A reference to an object of a region others can write, stored in a dict, names that
    # region with allow_shared: whoever can write the dict's bytes could name any file so.
    # Read back through a handle of a region opened without allow_shared, it is refused;
    # through one opened with it, it opens.
    from conftest import _new_path

    other_path = _new_path()
    shmarena.Region(other_path, REGION_SIZE)
    os.chmod(other_path, 0o660)
    try:
        shared = shmarena.Region(other_path, allow_shared=True)
        value = shmarena.Value("i", 5, name="v", region=shared)
        d = shmarena.Manager(region=region).dict(name="holder")
        d["v"] = value
        with pytest.raises(PermissionError, match="allow_shared"):
            d["v"]
        os.chmod(region.path, 0o660)
        trusting = shmarena.Region(region.path, allow_shared=True)
        assert shmarena.Manager(region=trusting).dict(name="holder")["v"].value == 5
    finally:
        os.chmod(region.path, 0o600)
        os.unlink(other_path)
