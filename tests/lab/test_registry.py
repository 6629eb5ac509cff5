"""The model registry's dashboard preset."""

from __future__ import annotations

from recsys.lab import registry


def test_quick_preset_fits_the_dataset():
    assert registry.quick_models(["text", "audio"]) == ["popularity", "ease", "freedom"]
    assert registry.quick_models([]) == ["popularity", "ease", "lightgcn"]  # no features: no FREEDOM


def test_quick_preset_skips_models_not_installed(monkeypatch):
    real = registry.is_available
    monkeypatch.setattr(registry, "is_available", lambda name: name != "freedom" and real(name))
    assert registry.quick_models(["text"]) == ["popularity", "ease", "lightgcn"]
