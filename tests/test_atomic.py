"""Output paths are checked before long work: a folder, a path under a file, an impossible name."""

from __future__ import annotations

import pytest

from recsys.atomic import write_json, write_with
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


def test_a_file_named_by_what_was_written_lands_there_whole_or_not_at_all(tmp_path):
    """``named`` picks the final name from the written file (the fast-scan codes carry their CRC-32)."""
    final = write_with(
        tmp_path / "codes",
        lambda tmp: tmp.write_bytes(b"abc"),
        named=lambda tmp: tmp_path / f"codes-{tmp.stat().st_size}",
    )
    assert final == tmp_path / "codes-3" and final.read_bytes() == b"abc"

    def broken(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_with(tmp_path / "other", broken, named=lambda tmp: tmp_path / "other-4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes-3"]  # no half file, no temporary one
