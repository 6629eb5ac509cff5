"""Page tests run the real engine on the six-item catalogue of tests/fakes.py with its fake encoders.

The fakes make the right answers known (``red apple`` -> Apple) while the pages, the engine, fusion
and the explanations run unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
import torch
from fakes import build_catalogue
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_app(tmp_path, monkeypatch, patched_encoders):
    """Point the app at a fresh fake catalogue and return a factory of AppTests for a page file."""
    root = build_catalogue(tmp_path / "cat")
    monkeypatch.setenv("RECSYS_CATALOGUE", str(root))
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RECSYS_IMAGE_ALIGNER", "none")  # the fake encoders have no trained aligner
    monkeypatch.setenv("RECSYS_AUDIO_ALIGNER", "none")
    st.cache_resource.clear()
    st.cache_data.clear()
    threads = torch.get_num_threads()  # the app sets 1 for queries; leave other tests as they were

    def make(page: str = "app.py") -> AppTest:
        return AppTest.from_file(str(REPO / page), default_timeout=60)

    yield make
    st.cache_resource.clear()
    torch.set_num_threads(threads)
