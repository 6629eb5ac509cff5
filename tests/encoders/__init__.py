"""Tests of recsys.encoders."""
