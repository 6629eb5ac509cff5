"""Fixtures of the CLI tests."""

from __future__ import annotations

import pytest
from fakes import build_catalogue


@pytest.fixture
def catalogue(tmp_path, monkeypatch, patched_encoders):
    """The six-item fake catalogue, served by the fake encoders of fakes.py, with its own cache."""
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RECSYS_IMAGE_ALIGNER", "none")  # the fake encoders have no trained aligner
    monkeypatch.setenv("RECSYS_AUDIO_ALIGNER", "none")
    return build_catalogue(tmp_path / "cat")
