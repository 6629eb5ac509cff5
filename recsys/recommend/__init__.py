"""Recommending: the pipeline's last stage, from encoded queries to ranked, explained items.

- :mod:`~recsys.recommend.query`: what a user asks with (``Query``) and the unit vectors the
  engine folds it into (``QueryVectors``).
- :mod:`~recsys.recommend.engine`: the engine. Cosine scoring of the catalogue, fusion
  (:mod:`recsys.fusion`) and top-K with per-modality contributions (``RecommendationEngine``,
  ``Recommendation``).
- :mod:`~recsys.recommend.retrieval`: past a few thousand items, the candidates the engine asks its
  vector store for (:mod:`recsys.store`), and how ``rrf`` ranks them.
- :mod:`~recsys.recommend.catalogue_store`: the store behind a catalogue's engine, kept in step
  with the catalogue item by item.
- :mod:`~recsys.recommend.explain`: why an item was recommended, from the engine's own scores.
- :mod:`~recsys.recommend.relevance`: whether a result is a good match (a score threshold per
  strategy and similarity).

The engine's API is importable from here as well.
"""

from recsys.recommend.engine import Recommendation, RecommendationEngine
from recsys.recommend.query import Query

__all__ = ["Query", "Recommendation", "RecommendationEngine"]
