"""Output paths are checked before long work: a folder, a path under a file, an impossible name."""

from __future__ import annotations

import pytest

from recsys.atomic import write_json
from recsys.errors import RecsysError
from recsys.paths import check_output_file


def test_writable_paths_pass_and_leave_nothing_behind(tmp_path):
    target = tmp_path / "new" / "deeper" / "results.json"
    assert check_output_file(target, "Results") == target
    write_json(target, {"a": 1})
    assert check_output_file(target, "Results") == target  # an existing file is replaced atomically later


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(RecsysError, match="is a folder"):
        check_output_file(tmp_path, "Results")


@pytest.mark.parametrize("name", ["under-a-file", "too-long"])
def test_unwritable_paths_are_refused(tmp_path, name):
    (tmp_path / "f").write_text("x")
    target = tmp_path / "f" / "r.json" if name == "under-a-file" else tmp_path / ("x" * 300 + ".json")
    with pytest.raises(RecsysError, match="Results"):
        check_output_file(target, "Results")
