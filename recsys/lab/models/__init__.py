"""Recommenders behind one ``fit/score`` interface (see :mod:`recsys.lab.base`)."""
