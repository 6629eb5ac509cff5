"""Multimodal recommender system: encoders, alignment, fusion and evaluation."""

__version__ = "0.1.0"
