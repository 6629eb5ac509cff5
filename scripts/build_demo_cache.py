"""Build ``data/tuxpaint/prebuilt/``: the demo catalogue's derived data, so a fresh clone's demo starts in seconds.

    .venv/bin/python scripts/build_demo_cache.py                  # the demo catalogue
    .venv/bin/python scripts/build_demo_cache.py --catalogue DIR  # any catalogue (writes DIR/prebuilt/)

1. Builds the engine with the configured encoders and aligners through the normal embedding cache,
   encoding only what it lacks (from nothing: ~19 min on a busy 2-core machine).
2. Writes every cached row the engine uses as float16 (text, image and audio embeddings, the image
   class probabilities of the label bridge), the label bridge's class-name embeddings and what speech
   recognition heard in the speech clips (:mod:`recsys.alignment.spoken`), with a
   manifest naming each file's feature id, sha256, shape and the catalogue's content hash
   (:mod:`recsys.prebuilt`).
3. Builds the engine again from a scratch cache seeded from those files alone, which shows they are
   complete (nothing is encoded), and draws Explore's default maps (fused and per modality, default
   weights and UMAP parameters) from that engine, shipping each with a sketch of its vectors.

Run it after changing the catalogue, the encoders or the aligners, and commit the folder.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsys.catalogue import load_catalogue  # noqa: E402
from recsys.pipeline import PipelineConfig, build_engine, feature_outputs  # noqa: E402
from recsys.prebuilt import (  # noqa: E402
    FOLDER,
    MANIFEST,
    add_map,
    export_features,
    export_transcripts,
    prebuilt_dir,
    write_manifest,
)
from recsys.progress import progress_lines  # noqa: E402


def _clear(folder: Path) -> None:
    """Files of an earlier build go first: a part no longer built must not linger in the folder."""
    for path in [*folder.glob("*.npz"), folder / MANIFEST]:
        path.unlink(missing_ok=True)


def _draw_maps(folder: Path, manifest: dict, catalogue, config: PipelineConfig, scratch: Path) -> None:
    """Build the engine from the shipped rows alone (into ``scratch``) and ship its default maps."""
    from recsys.maps import FUSED, ProjectionParams, catalogue_vectors, map_path, project
    from recsys.ui.explore import item_groups

    encoded: dict[str, int] = {}

    def count(stage: str, done: int, total: int) -> None:
        if stage.endswith("embeddings"):
            encoded[stage] = total

    engine = build_engine(catalogue, replace(config, cache_dir=str(scratch)), progress=count)
    left = {stage: n for stage, n in encoded.items() if n}
    if left:
        print(f"warning: the shipped rows miss items (encoded again: {left}); a fresh start encodes them too")
    weights = dict.fromkeys(engine.item_modalities, 1.0)  # the app's default weights
    params = ProjectionParams()
    for source in (FUSED, *engine.item_modalities):
        vectors, indices = catalogue_vectors(engine, source, weights)
        groups = item_groups(catalogue, indices)
        projection = project(vectors, params, cache_dir=scratch / "maps", groups=groups)
        add_map(
            folder,
            manifest,
            source=source,
            weights=weights,
            params=params,
            vectors=vectors,
            groups=groups,
            map_file=map_path(scratch / "maps", projection.key),
        )
        print(f"map {source}: {len(vectors)} items")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalogue", default=str(REPO / "data" / "tuxpaint"))
    parser.add_argument("--no-maps", action="store_true", help="ship the embeddings only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    catalogue = load_catalogue(args.catalogue)
    config = PipelineConfig.layered(args.catalogue)
    with progress_lines():
        engine = build_engine(catalogue, config)
    folder = prebuilt_dir(catalogue.root)
    _clear(folder)
    outputs = {m: feature_outputs(ix.aligner) for m, ix in engine.indexes.items()}
    manifest = export_features(
        catalogue, engine.query_encoders, outputs, folder, cache_dir=config.cache_dir, precision=config.precision
    )
    if engine.spoken is not None:  # what the speech clips say (recsys.alignment.spoken)
        heard = export_transcripts(
            catalogue, engine.spoken.transcriber_id, folder, manifest, cache_dir=config.cache_dir
        )
        print(f"transcripts: {heard} speech clips")
    write_manifest(folder, manifest)
    if not args.no_maps:
        with tempfile.TemporaryDirectory(prefix="recsys-prebuilt-") as scratch:
            previous = os.environ.get("RECSYS_CACHE_DIR")
            os.environ["RECSYS_CACHE_DIR"] = scratch  # the label bridge reads the default cache folder
            try:
                _draw_maps(folder, manifest, catalogue, config, Path(scratch))
            finally:
                if previous is None:
                    os.environ.pop("RECSYS_CACHE_DIR", None)
                else:
                    os.environ["RECSYS_CACHE_DIR"] = previous
        write_manifest(folder, manifest)
    files = sorted(folder.iterdir())
    total = sum(p.stat().st_size for p in files)
    for path in files:
        print(f"{path.stat().st_size / 1e6:7.2f} MB  {path.relative_to(catalogue.root)}")
    print(f"{total / 1e6:7.2f} MB  {FOLDER}/ in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
