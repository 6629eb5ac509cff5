"""Output paths are checked before long work: a folder, a path under a file, an impossible name."""

from __future__ import annotations

import pytest

from recsys.atomic import check_writable, write_json
from recsys.errors import RecsysError


def test_writable_paths_pass_and_leave_nothing_behind(tmp_path):
    target = tmp_path / "new" / "deeper" / "results.json"
    assert check_writable(target) == target
    assert list(target.parent.iterdir()) == []  # the probe is gone; the folders wait for the write
    write_json(target, {"a": 1})
    assert check_writable(target) == target  # an existing file is replaced atomically later


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(RecsysError, match="is a folder; give a file name"):
        check_writable(tmp_path)


@pytest.mark.parametrize("name", ["under-a-file", "too-long"])
def test_unwritable_paths_are_refused(tmp_path, name):
    (tmp_path / "f").write_text("x")
    target = tmp_path / "f" / "r.json" if name == "under-a-file" else tmp_path / ("x" * 300 + ".json")
    with pytest.raises(RecsysError, match="Cannot write"):
        check_writable(target)
