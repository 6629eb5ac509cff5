"""Building a :class:`~recsys.recommend.engine.RecommendationEngine` from a layered configuration.

Configuration layers, later ones winning (as in RecBole): built-in defaults, a ``recsys.toml``
in the catalogue folder, a TOML file given explicitly, ``RECSYS_*`` environment variables, and
keyword overrides (CLI flags, app controls).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from recsys import threads
from recsys.alignment.base import aligner_inputs
from recsys.catalogue import Catalogue, load_catalogue
from recsys.collector import collector_paused
from recsys.config import check_value, env_values, read_table, validate
from recsys.device import device_problem
from recsys.encoding import (
    PRECISIONS,
    SHOWN_FAILURES,
    BatchOptions,
    FeaturePlan,
    failure_summary,
    feature_id,
    item_keys,
    plan_features,
    run_plan,
)
from recsys.encoding.cache import Features, default_cache_dir
from recsys.errors import ConfigError, RecsysError
from recsys.paths import check_output_dir, output_dir_problem
from recsys.prebuilt import seed_cache
from recsys.progress import ProgressLog, StageProgress, fan_out
from recsys.recommend.catalogue_store import SEARCH_MODES, attach_store, models_description
from recsys.recommend.engine import MODALITIES, ModalityIndex, RecommendationEngine, item_dtype, item_matrix
from recsys.retention import keep_recent
from recsys.snapshot import Matrices, keys_part, load_snapshot, save_snapshot, snapshot_base, snapshot_key
from recsys.threads import batch_then_query
from recsys.vectors import unit_vectors

log = logging.getLogger(__name__)

CONFIG_FILE = "recsys.toml"
#: Item rows per step when a modality's matrices are derived from its features: the working memory
#: is one step's rather than more copies of the catalogue's vectors (the image features of 1M items
#: are 9 GB in float32; deriving them whole peaked at 5 GB over the features at 100k items).
DERIVE_ROWS = 16_384


def _setting(default: Any, expects: str | None = None, **metadata: Any) -> Any:
    """A :class:`PipelineConfig` field and its schema (:mod:`recsys.config`)."""
    return field(default=default, metadata={**({"expects": expects} if expects else {}), **metadata})


_ENCODER = "an encoder name (a string)"
_ALIGNER = "an aligner: default, native, label-bridge, none or a .json path (a string)"


@dataclass(frozen=True)
class PipelineConfig:
    """Which encoder and aligner serve each modality. Encoder names follow :mod:`recsys.encoders`.

    The fields are also the schema of ``recsys.toml``, ``--config`` files and ``RECSYS_<FIELD>``
    variables: every value is checked when a config is built (:mod:`recsys.config`).
    """

    text_encoder: str = _setting("minilm", _ENCODER)
    image_encoder: str = _setting("efficientnet-lite0", _ENCODER)
    audio_encoder: str = _setting("aisfx+yamnet", _ENCODER)
    image_aligner: str | None = _setting("default", _ALIGNER)
    audio_aligner: str | None = _setting("default", _ALIGNER)
    cache_dir: str | None = _setting(None, "a folder path (a string)", check=output_dir_problem)
    device: str | None = _setting(None, "a torch device name: cpu, cuda, cuda:N or mps", check=device_problem)
    #: Items per forward pass when indexing; None: 32 on the CPU, 256 on CUDA
    #: (:func:`recsys.device.default_batch_size`).
    batch_size: int | None = _setting(None, minimum=1)
    #: Where the vector store lives: a folder (embedded, the default under ``cache_dir``), or a URI
    #: such as ``milvus-lite://file.db`` or ``http://host:19530`` (a Milvus server); see :mod:`recsys.store`.
    store: str | None = _setting(None, "a folder or a store URI (a string)")
    #: ``auto`` (exhaustive up to :data:`recsys.recommend.engine.EXACT_MAX_ITEMS` items), ``exact`` or ``ann``.
    search: str = _setting("auto", choices=SEARCH_MODES)
    #: ``bf16`` / ``fp16``: autocast when indexing on CUDA (the CPU stays fp32).
    precision: str = _setting("fp32", choices=PRECISIONS)
    #: Encode on a Ray cluster (:mod:`recsys.encoding.distributed`): None runs here; ``auto`` connects to the
    #: running cluster (or starts a local one); or an address, ``host:6379`` / ``ray://host:10001``.
    ray: str | None = _setting(None, "auto or a cluster address (a string)")
    #: Model actors on the Ray cluster; None: one per GPU on CUDA, else sized from the cluster's CPUs.
    ray_actors: int | None = _setting(None, minimum=1)

    def __post_init__(self) -> None:
        validate(self)

    def encoder_name(self, modality: str) -> str:
        return getattr(self, f"{modality}_encoder")

    def aligner_spec(self, modality: str) -> str | None:
        spec = getattr(self, f"{modality}_aligner", None)
        return None if spec in (None, "", "none") else spec

    def cache_folder(self) -> Path:
        """``cache_dir``, else the default cache folder: embeddings, stores and catalogue checks go there."""
        return Path(self.cache_dir) if self.cache_dir else default_cache_dir()

    @classmethod
    def layered(
        cls, catalogue_dir: str | Path | None = None, config_file: str | Path | None = None, **overrides: Any
    ) -> PipelineConfig:
        """Defaults < the catalogue's ``recsys.toml`` < ``config_file`` < ``RECSYS_*`` < ``overrides``.

        ``config_file`` must exist; the catalogue's own file is optional. Every value is checked
        against the schema, and a wrong one raises :class:`ConfigError` naming where it was set.
        The thread overrides (:mod:`recsys.threads`) are checked here too, before any work.
        """
        values: dict[str, tuple[Any, str]] = {}
        local = Path(catalogue_dir) / CONFIG_FILE if catalogue_dir else None
        for path in (local if local is not None and os.path.lexists(local) else None, config_file):
            if path is not None:
                values.update({k: (v, f"{path}: key '{k}'") for k, v in read_table(path, "pipeline").items()})
        values.update(env_values(cls))
        values.update({k: (v, f"option --{k.replace('_', '-')}") for k, v in overrides.items() if v is not None})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            where = values[unknown[0]][1]
            raise ConfigError(
                f"unknown configuration keys: {', '.join(unknown)} ({where}); known: {', '.join(sorted(names))}"
            )
        checked = {name: check_value(cls, name, value, where) for name, (value, where) in values.items()}
        threads.check_overrides()
        return cls(**checked)


def _create_encoder(name: str, device: str | None) -> Any:
    from recsys.encoders import create_encoder

    return create_encoder(name, device=device)


def _build_aligner(spec: str, source: Any, text: Any, catalogue: Catalogue, cache_dir: Any = None) -> Any:
    from recsys.alignment.factory import build_aligner

    return build_aligner(spec, source_encoder=source, text_encoder=text, catalogue=catalogue, cache_dir=cache_dir)


def _encoder_recipe(name: str, device: str) -> Any:
    """What a Ray actor builds its encoder from (a registry name + device, never a loaded model)."""
    from recsys.encoding.distributed import EncoderRecipe

    return EncoderRecipe(name, device)


def _encoding_cluster(config: PipelineConfig, plans: list[FeaturePlan]) -> contextlib.AbstractContextManager[Any]:
    """Connected to the configured Ray cluster while inside, when one is set and anything is left to encode."""
    if config.ray is None or not any(plan.todo for plan in plans):
        return contextlib.nullcontext()
    from recsys.encoding.distributed import ray_cluster

    return ray_cluster(config.ray)


def _run_plan(
    modality: str,
    plan: FeaturePlan,
    config: PipelineConfig,
    options: BatchOptions,
    progress: Callable[[int, int], None],
) -> dict[str, Features]:
    """One encoding pass, here or on the configured Ray cluster; both write the same cache."""
    if config.ray is None:
        return run_plan(plan, options, progress)
    from recsys.encoding.distributed import run_plan_on_ray

    recipe = _encoder_recipe(config.encoder_name(modality), str(getattr(plan.encoder, "device", "cpu")))
    return run_plan_on_ray(plan, recipe, options, progress, actors=config.ray_actors)


def _stage(progress: StageProgress, stage: str) -> Callable[[int, int], None]:
    return lambda done, total: progress(stage, done, total)


@dataclass
class _Modality:
    encoder: Any
    aligner: Any
    plan: FeaturePlan


def feature_outputs(aligner: Any) -> list[str]:
    """The encoder outputs a modality's index needs: its embedding, and whatever its aligner takes."""
    return list(dict.fromkeys(["embedding", *(aligner.input_kind.split("+") if aligner is not None else [])]))


@batch_then_query
def build_engine(
    catalogue: Catalogue, config: PipelineConfig | None = None, progress: StageProgress | None = None
) -> RecommendationEngine:
    """Encode (or read from cache) every modality the catalogue has and index it.

    A start whose items and models are those of an earlier build maps that build's item matrices
    (:mod:`recsys.snapshot`) instead of reading every cached feature and deriving them again.
    Otherwise each modality is one pass over its items that yields every feature it needs (embeddings and,
    for the label bridge, class probabilities), so each model runs once per item. Every stage is
    announced (``progress(stage, 0, total)``) before the first is encoded, for an overall ETA;
    :class:`recsys.progress.ProgressLog` logs rate and ETA lines besides ``progress``.

    Encodes in the batch thread role and leaves the process in the query role (:mod:`recsys.threads`).
    Python's cyclic garbage collector waits while the build makes long-lived objects (keys, versions
    and ids per item: :mod:`recsys.collector`), but not through an encoding pass, which may run for hours.
    """
    with contextlib.ExitStack() as pause:
        pause.enter_context(collector_paused())
        return _build_engine(catalogue, config, progress, pause)


def _build_engine(
    catalogue: Catalogue, config: PipelineConfig | None, progress: StageProgress | None, pause: contextlib.ExitStack
) -> RecommendationEngine:
    config = config or PipelineConfig()
    if config.cache_dir is None:  # a set cache_dir was checked with the config; the default is checked here
        check_output_dir(default_cache_dir(), "The cache folder (RECSYS_CACHE_DIR)")
    report = fan_out(progress, ProgressLog())
    text_encoder = _create_encoder(config.text_encoder, config.device)
    query_encoders: dict[str, Any] = {"text": text_encoder}
    for modality in MODALITIES:  # every model and aligner first: a bad one fails before any work
        if modality != "text" and catalogue.has_modality(modality).any():
            query_encoders[modality] = _create_encoder(config.encoder_name(modality), config.device)
    # vectors shipped with the catalogue (keyed by encoder and content) fill the cache before anything is planned
    seed_cache(catalogue, query_encoders, cache_dir=config.cache_dir, precision=config.precision)
    models: dict[str, tuple[Any, Any]] = {}
    for modality, encoder in query_encoders.items():
        if not catalogue.has_modality(modality).any():
            continue
        spec = config.aligner_spec(modality) if modality != "text" else None
        aligner = _build_aligner(spec, encoder, text_encoder, catalogue, config.cache_dir) if spec else None
        models[modality] = (encoder, aligner)
    if not models:
        raise RecsysError("the catalogue has no text, image or audio to index")
    keys = {m: item_keys(catalogue, m, encoder, cache_dir=config.cache_dir) for m, (encoder, _) in models.items()}
    rule = _speech_rule(models, text_encoder)
    inputs = _EngineInputs(catalogue, models, keys, rule)
    base = snapshot_base(config.cache_folder(), Path(catalogue.root).resolve(), models_description(models))
    key = inputs.snapshot_key(config.precision)
    kept = load_snapshot(base, key, len(catalogue), models)
    if kept is not None:
        matrices, extras = kept
        indexes = {m: _kept_index(m, encoder, aligner, matrices[m]) for m, (encoder, aligner) in models.items()}
        spoken = rule if extras.get("spoken") is True else None
        _report_kept_failures(extras.get("failures"))
    else:
        pause.close()  # the collector runs through the encoding pass
        indexes, spoken, failures = _built_indexes(inputs, text_encoder, config, report)
        matrices = {m: Matrices(ix.native, ix.present, ix.centre, ix.shared) for m, ix in indexes.items()}
        kept_failures = {m: {"count": len(f), "shown": f[:SHOWN_FAILURES]} for m, f in failures.items() if f}
        save_snapshot(base, key, matrices, {"spoken": spoken is not None, "failures": kept_failures})
    if base.is_dir():  # earlier model sets' snapshots of this catalogue go, but for the last one
        keep_recent(base, "engine snapshot", Path(catalogue.root).resolve())
    if "text" in indexes and any(ix.shared is not None for ix in indexes.values()):
        indexes["text"].shared = indexes["text"].native
    engine = RecommendationEngine(catalogue, text_encoder, indexes, query_encoders)
    engine.spoken = spoken if "audio" in indexes and indexes["audio"].shared is not None else None
    engine.calibrations = _calibrations(indexes, text_encoder)
    engine.matrices_key = key
    return attach_store(
        engine,
        search=config.search,
        uri=config.store,
        cache_dir=config.cache_dir,
        progress=_stage(report, "index"),
        keys=keys,
    )


def _kept_index(modality: str, encoder: Any, aligner: Any, mats: Matrices) -> ModalityIndex:
    space = getattr(encoder, "space", modality)
    return ModalityIndex(modality, encoder, mats.native, mats.present, space, mats.centre, aligner, mats.shared)


def _report_kept_failures(kept: Any) -> None:
    """The summary lines of the items that had no vector when the snapshot was built (their files
    are unchanged, so decoding them again would fail again); a malformed record is skipped."""
    if not isinstance(kept, dict):
        return
    for modality, record in kept.items():
        try:
            count, shown = int(record["count"]), [(str(i), str(why)) for i, why in record["shown"]]
        except (TypeError, ValueError, KeyError):
            continue
        if count > 0:
            log.warning("%s", failure_summary(str(modality), shown, count))


def _speech_rule(models: Mapping[str, tuple[Any, Any]], text_encoder: Any) -> Any:
    """How aligned audio places speech clips at their words (:mod:`recsys.alignment.spoken`); None
    without aligned audio or a rule for its encoder."""
    if "audio" not in models or models["audio"][1] is None:
        return None
    from recsys.alignment.spoken import spoken_rule

    return spoken_rule(models["audio"][0], text_encoder)


@dataclass(frozen=True)
class _EngineInputs:
    """What an engine's item matrices are computed from: the items, each modality's (encoder,
    aligner or None), every item's content key per modality, and the speech rule of aligned audio."""

    catalogue: Catalogue
    models: dict[str, tuple[Any, Any]]
    keys: dict[str, list[str | None]]
    rule: Any

    def snapshot_key(self, precision: str) -> str:
        """:func:`recsys.snapshot.snapshot_key` over all of it."""
        n = len(self.catalogue)
        parts = [f"{n} items in {np.dtype(item_dtype(n)).name}", models_description(self.models, self.rule)]
        for m, (encoder, aligner) in sorted(self.models.items()):
            parts.append(" ".join(feature_id(encoder, output, precision) for output in feature_outputs(aligner)))
            parts.append(keys_part(m, self.keys[m]))
        return snapshot_key(parts)


def _built_indexes(
    inputs: _EngineInputs, text_encoder: Any, config: PipelineConfig, report: StageProgress
) -> tuple[dict[str, ModalityIndex], Any, dict[str, list[tuple[str, str]]]]:
    """Encode what the cache lacks, then each modality's index: (indexes, the speech rule applied or
    None, per modality the (item id, why) of items left without a vector)."""
    catalogue, rule = inputs.catalogue, inputs.rule
    options = BatchOptions(batch_size=config.batch_size, precision=config.precision)
    todo: dict[str, _Modality] = {}
    for modality, (encoder, aligner) in inputs.models.items():
        outputs = feature_outputs(aligner)
        plan = plan_features(
            catalogue, modality, encoder, outputs, cache_dir=config.cache_dir, precision=config.precision,
            keys=inputs.keys[modality],
        )  # fmt: skip
        todo[modality] = _Modality(encoder, aligner, plan)
        report(f"{modality} embeddings", 0, len(plan.todo))
    indexes: dict[str, ModalityIndex] = {}
    features: dict[str, dict[str, Features]] = {}
    spoken = None
    with _encoding_cluster(config, [job.plan for job in todo.values()]):
        for modality, job in todo.items():
            features[modality] = _run_plan(
                modality, job.plan, config, options, _stage(report, f"{modality} embeddings")
            )
    for modality, job in todo.items():
        feats = features.pop(modality)
        job.plan.features.clear()  # this modality's features go once its matrices are derived
        index = _native_index(modality, job.encoder, feats["embedding"])
        if job.aligner is not None:
            shared = _aligned(job.aligner, feats)
            if modality == "audio" and rule is not None:  # speech clips at the words they say
                shared, spoken = _spoken_items(catalogue, job, rule, shared, feats["embedding"], config, report)
            index.aligner = job.aligner
            index.shared = item_matrix(shared)
        indexes[modality] = index
        del feats
    return indexes, spoken, {modality: list(job.plan.failures) for modality, job in todo.items()}


def _spoken_items(
    catalogue: Catalogue,
    job: _Modality,
    rule: Any,
    shared: np.ndarray,
    emb: Features,
    config: PipelineConfig,
    report: StageProgress,
) -> tuple[np.ndarray, Any]:
    """The audio items' shared vectors with speech clips at their words, and the rule (None: by sound alone)."""
    from recsys.alignment.spoken import STAGE
    from recsys.encoding.cache import item_source

    if not emb.present.any():
        return shared, None
    sources = [item_source(it, "audio") if it.audio is not None else None for it in catalogue.items]
    shared, _ = rule.items(
        shared,
        emb.vectors,
        emb.present & shared.any(axis=1),
        job.plan.keys,
        sources,
        catalogue_root=catalogue.root,
        cache_dir=config.cache_dir,
        progress=_stage(report, STAGE),
    )
    return shared, rule


def _calibrations(indexes: Mapping[str, ModalityIndex], text_encoder: Any) -> dict[str, Any]:
    """The shipped match-confidence calibrations that fit these aligners (none, with a log line, otherwise)."""
    from recsys.alignment.confidence import find_calibrations
    from recsys.alignment.factory import CONFIDENCE_FILE

    aligners = {m: ix.aligner for m, ix in indexes.items() if ix.aligner is not None}
    if not aligners:
        return {}
    return find_calibrations(CONFIDENCE_FILE, aligners, text_encoder.encoder_id)


def _native_index(modality: str, encoder: Any, feats: Features) -> ModalityIndex:
    """Text stays as encoded; media are centred on the catalogue mean before cosine scoring.
    Derived a block of rows at a time (:data:`DERIVE_ROWS`) into the engine's item matrix."""
    vectors, present = feats.vectors, feats.present
    centre = None
    if modality != "text" and present.sum() > 1:
        total = np.zeros(vectors.shape[1], dtype=np.float64)
        for a, b in _row_blocks(len(vectors)):
            total += vectors[a:b][present[a:b]].sum(axis=0, dtype=np.float64)
        centre = (total / present.sum()).astype(np.float32)
    out = np.zeros(vectors.shape, dtype=item_dtype(len(vectors)))
    for a, b in _row_blocks(len(vectors)):
        rows = vectors[a:b] if centre is None else unit_vectors(vectors[a:b] - centre)
        out[a:b] = np.where(present[a:b, None], rows, 0.0)
    return ModalityIndex(modality, encoder, out, present, getattr(encoder, "space", modality), centre)


def _aligned(aligner: Any, feats: Mapping[str, Features]) -> np.ndarray:
    """Every item's vector in the shared space (zeros where an input the aligner takes is missing),
    a block of rows at a time (:data:`DERIVE_ROWS`)."""
    kind = aligner.input_kind
    present = np.logical_and.reduce([feats[k].present for k in kind.split("+")])
    shared = np.zeros((len(present), 0), dtype=np.float32)
    for a, b in _row_blocks(len(present)):
        block = aligner.transform(aligner_inputs(kind, {name: f.vectors[a:b] for name, f in feats.items()}))
        if a == 0:
            shared = np.zeros((len(present), block.shape[1]), dtype=np.float32)
        shared[a:b] = np.where(present[a:b, None], block, 0.0)
    return shared


def _row_blocks(n: int) -> list[tuple[int, int]]:
    return [(a, min(n, a + DERIVE_ROWS)) for a in range(0, n, DERIVE_ROWS)]


def load_engine(
    catalogue_dir: str | Path,
    config: PipelineConfig | None = None,
    progress: StageProgress | None = None,
    **overrides: Any,
) -> RecommendationEngine:
    """Load a catalogue folder and build its engine with the layered configuration."""
    config = config or PipelineConfig.layered(catalogue_dir, **overrides)
    catalogue = load_catalogue(catalogue_dir, cache_dir=config.cache_folder())
    return build_engine(catalogue, config, progress)


def config_summary(config: PipelineConfig) -> Mapping[str, Any]:
    return dataclasses.asdict(config)
