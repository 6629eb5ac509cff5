"""Checks on user-given paths: each problem named in one line, before anything is opened."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from recsys.errors import InputError
from recsys.paths import check_input_file, check_output_dir, check_output_file, show


def test_input_files(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    assert check_input_file(tmp_path / "a.png", "Image file") == tmp_path / "a.png"
    for path, words in [
        (tmp_path / ("x" * 300 + ".png"), "file name of 304 bytes"),
        (f"{tmp_path}/a\x00b.png", "contains a NUL byte"),
        (tmp_path, "is a folder, not a file"),
        (tmp_path / "missing.png", "does not exist"),
        (tmp_path / "a.png" / "b.png", "does not exist"),
        ("/dev/null", "is a device, not a file"),
        ("", "is empty"),
    ]:
        with pytest.raises(InputError, match=f"^Image file .*{words}"):
            check_input_file(path, "Image file")


def test_output_folders_and_files(tmp_path):
    (tmp_path / "file").write_text("x")
    assert check_output_dir(tmp_path / "new" / "deeper", "Output folder") == tmp_path / "new" / "deeper"
    assert check_output_file(tmp_path / "file", "Results file") == tmp_path / "file"
    assert check_output_file(tmp_path / "new" / "r.json", "Results file") == tmp_path / "new" / "r.json"
    with pytest.raises(InputError, match="is not a folder"):
        check_output_dir(tmp_path / "file", "Output folder")
    with pytest.raises(InputError, match="cannot be created: .*file' is not a folder"):
        check_output_dir(tmp_path / "file" / "sub", "Output folder")
    with pytest.raises(InputError, match="is a folder, not a file"):
        check_output_file(tmp_path, "Results file")
    with pytest.raises(InputError, match="is not a folder"):
        check_output_dir("/dev/null", "Cache folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_folders(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(InputError, match="not writable"):
        check_output_dir(locked / "out", "Output folder")
    with pytest.raises(InputError, match="not writable"):
        check_output_file(locked / "r.json", "Results file")


def test_show_keeps_messages_on_one_short_line():
    assert show("a\nb") == "'a\\nb'"
    long = show("x" * 300)
    assert len(long) < 120 and "300 characters" in long


path_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=300) | st.sampled_from(
    ["/", ".", "..", "/dev/null", "/proc/self/mem", "/nonexistent/x", "a\x00b", "x" * 300, "/tmp/" + "y/" * 200]
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=path_text)
@example(path="\udd00")  # a lone surrogate no byte decodes to, so no bytes for the OS (found at 10,000 examples)
def test_any_path_is_accepted_or_refused_in_one_line(tmp_path, path):
    """Arbitrary names (NUL, surrogates, huge, special files): a Path or one InputError line."""
    for check in (check_input_file, check_output_dir, check_output_file):
        try:
            assert check(path, "File") == type(tmp_path)(path)
        except InputError as exc:
            assert "\n" not in str(exc) and len(str(exc)) < 300
