"""Cross-modal alignment: map every modality's encoder output into the text encoder's space.

The public entry point is :mod:`recsys.alignment.factory` (``build_aligner``, ``load_aligner``,
``DEFAULT_ALIGNERS``); this package holds one aligner family per module.
"""
