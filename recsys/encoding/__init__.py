"""Encoding a catalogue: one pass per modality, each model run once per item, at the model's speed.

Per modality, :func:`plan_features` hashes every item (the cache key) and finds what no cache
holds for any requested output; :func:`run_plan` then decodes and preprocesses those items in
DataLoader worker processes (``recsys.media`` decoding plus the encoder's picklable
``preprocessor``), runs ``encoder.forward_batch`` once per batch in this process, and appends
every output (embedding, class probabilities, ...) to its own :class:`recsys.encoding.cache.FeatureStore`
chunk by chunk. Items that fail to decode get no vector and are reported in one summary line; workers
never die of them.

:func:`store_encoded` is that last step alone: :mod:`recsys.encoding.distributed` runs the same pass on a Ray
cluster and hands its batches to it, so both write the same shards.

Worker processes and torch / BLAS threads come from the product's one policy
(:func:`recsys.threads.worker_processes`, the ``batch`` role of :func:`recsys.threads.use_threads`).
On CUDA batches are pinned and ``precision`` may autocast to bf16/fp16 (cached under a feature id
marked with the precision, so fp32 and half-precision vectors never mix); the CPU always runs fp32.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np

from recsys.catalogue import Catalogue
from recsys.device import default_batch_size
from recsys.encoders.base import Preprocessor, encoder_outputs, output_width
from recsys.encoding.cache import (
    Features,
    FeatureStore,
    catalogue_keys,
    decode_source,
    item_source,
    key_positions,
)
from recsys.errors import ConfigError, InputError
from recsys.threads import one_thread_per_worker, use_threads, worker_processes

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
PRECISIONS = ("fp32", "bf16", "fp16")
#: Items per cache shard: what an interrupted run can lose, and the unit of a resumed one.
CHUNK_SIZE = 256


@dataclass(frozen=True)
class BatchOptions:
    """How a pass runs. ``workers``/``threads`` None: the thread policy decides (:mod:`recsys.threads`);
    ``batch_size`` None: the encoder's device does (:func:`recsys.device.default_batch_size`)."""

    batch_size: int | None = None
    chunk_size: int = CHUNK_SIZE
    workers: int | None = None
    threads: int | None = None
    precision: str = "fp32"
    pin_memory: bool | None = None  # page-locked batches for the copy to a GPU; None: on CUDA

    def __post_init__(self) -> None:
        if (self.batch_size is not None and self.batch_size < 1) or self.chunk_size < 1:
            raise InputError(f"batch_size and chunk_size must be at least 1, got {self.batch_size}, {self.chunk_size}")
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    def for_encoder(self, encoder: Any) -> BatchOptions:
        """These options with ``batch_size`` settled for ``encoder``'s device."""
        if self.batch_size is not None:
            return self
        return replace(self, batch_size=default_batch_size(str(getattr(encoder, "device", "cpu"))))


# -- what runs in the worker processes (all picklable, no model) --------------------------------------
class Job(NamedTuple):
    key: str
    item_id: str
    source: str  # the text, or the media file's path


class Prepared(NamedTuple):
    key: str
    item_id: str
    value: Any  # the preprocessed item, None when it failed
    error: str | None


class Batch(NamedTuple):
    """A collated batch; DataLoader's ``pin_memory`` pins the tensors in ``inputs``."""

    keys: list[str]
    inputs: Any  # None when every item of the batch failed
    failures: list[tuple[str, str]]  # (item id, message)


class ItemDataset:
    """Map-style dataset over (key, item id, source): decode + preprocess one item, never raise."""

    def __init__(self, jobs: Sequence[Job], modality: str, preprocessor: Preprocessor) -> None:
        self.jobs = list(jobs)
        self.modality = modality
        self.preprocessor = preprocessor

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, index: int) -> Prepared:
        job = self.jobs[index]
        try:
            source_input = getattr(self.preprocessor, "source_input", None)  # e.g. JPEG bytes for the GPU
            if source_input is not None and (raw := source_input(job.source)) is not None:
                return Prepared(job.key, job.item_id, raw, None)
            side = getattr(self.preprocessor, "min_image_side", None)  # duck-typed preprocessors may lack it
            decoded = decode_source(job.source, self.modality, min_image_side=side)
            return Prepared(job.key, job.item_id, self.preprocessor(decoded), None)
        except InputError as exc:
            return Prepared(job.key, job.item_id, None, str(exc))
        except Exception as exc:  # one odd file in a million must not end a long run: report, skip
            return Prepared(job.key, job.item_id, None, f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class Collate:
    """Joins the good items of a batch with the preprocessor's ``collate``; arrays become tensors when
    ``tensors`` (shared memory between processes instead of pickled copies; pinnable)."""

    preprocessor: Preprocessor
    tensors: bool = False

    def __call__(self, prepared: list[Prepared]) -> Batch:
        good = [p for p in prepared if p.error is None]
        failures = [(p.item_id, p.error or "") for p in prepared if p.error is not None]
        inputs = self.preprocessor.collate([p.value for p in good]) if good else None
        if self.tensors and inputs is not None:
            inputs = _as_tensors(inputs)
        return Batch([p.key for p in good], inputs, failures)


def _as_tensors(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        import torch

        return torch.from_numpy(value)
    if isinstance(value, tuple):
        return tuple(_as_tensors(v) for v in value)
    return value


# -- the model side ----------------------------------------------------------------------------------
class _EncodeOnly:
    """Encoders without ``forward_batch`` (only ``encode`` / ``predict_proba``): decoded inputs as they are."""

    preprocessor = Preprocessor()

    def __init__(self, encoder: Any, outputs: Sequence[str]) -> None:
        self.encoder = encoder
        self.outputs = tuple(outputs)

    def forward_batch(self, batch: list[Any]) -> dict[str, np.ndarray]:
        return encoder_outputs(self.encoder, batch, self.outputs, batch_size=len(batch))


def _model(encoder: Any, outputs: Sequence[str]) -> Any:
    """Something with ``preprocessor`` and ``forward_batch``: the encoder itself when it is one of ours."""
    if hasattr(encoder, "forward_batch") and hasattr(encoder, "preprocessor"):
        missing = sorted(set(outputs) - set(getattr(encoder, "outputs", ("embedding",))))
        if missing:
            raise InputError(f"{encoder.encoder_id} has no output {', '.join(missing)}")
        return encoder
    return _EncodeOnly(encoder, outputs)


def feature_id(encoder: Any, output: str, precision: str = "fp32") -> str:
    """Cache id of one output: the encoder id for embeddings (as before), ``<id>#<output>`` otherwise.

    An encoder that runs several models (:class:`recsys.encoders.tagged.TaggedEncoder`) names the one
    computing each output with ``feature_source(output)``; that model's id and device key the cache.
    """
    source = encoder.feature_source(output) if hasattr(encoder, "feature_source") else encoder
    base = source.encoder_id if output == "embedding" else f"{source.encoder_id}#{output}"
    return base if _effective_precision(source, precision) == "fp32" else f"{base}~{precision}"


def _effective_precision(encoder: Any, precision: str) -> str:
    """Half precision applies on CUDA only; on the CPU everything stays fp32."""
    return precision if str(getattr(encoder, "device", "cpu")).startswith("cuda") else "fp32"


@contextlib.contextmanager
def _autocast(encoder: Any, precision: str) -> Iterator[None]:
    if _effective_precision(encoder, precision) == "fp32":
        yield
        return
    import torch

    with torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16):
        yield


# -- planning and running a pass ---------------------------------------------------------------------
@dataclass
class FeaturePlan:
    """One pass over a modality: keys per item, each output's cached rows, and the items to encode."""

    modality: str
    encoder: Any
    outputs: tuple[str, ...]
    keys: list[str | None]
    stores: dict[str, FeatureStore]
    features: dict[str, Features]  # per output, in catalogue order; filled in as the pass runs
    missing: dict[str, set[str]]  # per output: keys its store lacks
    todo: list[Job]  # one job per distinct missing key, in catalogue order
    positions: dict[str, list[int]] = field(default_factory=dict)  # key -> items holding it (worked out if empty)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (item id, why) of items left without a vector

    def __post_init__(self) -> None:
        if not self.positions:
            self.positions = key_positions(self.keys)

    def fill(self, name: str, keys: list[str], vectors: np.ndarray) -> None:
        """Put freshly computed rows into ``features[name]`` at every item holding their key."""
        feats = self.features[name]
        if feats.vectors.shape[1] != vectors.shape[1]:  # nothing was cached yet: allocate
            feats = self.features[name] = Features(
                self.stores[name].blank(len(self.keys), vectors.shape[1]), feats.present
            )
        if len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} keys for {len(vectors)} vectors")
        holders = [self.positions[key] for key in keys]  # one fancy-indexed copy per batch, not per row
        targets = np.fromiter(itertools.chain.from_iterable(holders), dtype=np.intp)
        sources = np.repeat(np.arange(len(keys)), [len(h) for h in holders])
        feats.vectors[targets] = vectors[sources]
        feats.present[targets] = True


def plan_features(
    catalogue: Catalogue,
    modality: str,
    encoder: Any,
    outputs: Sequence[str] = ("embedding",),
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    precision: str = "fp32",
    keys: list[str | None] | None = None,
) -> FeaturePlan:
    """Hash every item (unless its ``keys`` are given: :func:`item_keys`) and read what the cache
    holds (each shard once); nothing is decoded yet."""
    outputs = tuple(dict.fromkeys(outputs))
    if keys is None:
        keys = item_keys(catalogue, modality, encoder, cache_dir=cache_dir)
    elif len(keys) != len(catalogue.items):
        raise ValueError(f"{len(keys)} keys for {len(catalogue.items)} items")
    stores = {
        name: FeatureStore(cache_dir, feature_id(encoder, name, precision), output_width(encoder, name))
        for name in outputs
    }
    positions = key_positions(keys)  # once for every output's store and the plan
    features = {name: store.load(keys, positions) for name, store in stores.items()}
    missing = {
        name: {k for k, ok in zip(keys, f.present.tolist(), strict=True) if k is not None and not ok}
        for name, f in features.items()
    }
    needed = set().union(*missing.values())
    todo: dict[str, Job] = {}
    for item, key in zip(catalogue.items, keys, strict=True):
        if key in needed and key not in todo:
            todo[key] = Job(key, item.id, item_source(item, modality))
    return FeaturePlan(modality, encoder, outputs, keys, stores, features, missing, list(todo.values()), positions)


def item_keys(
    catalogue: Catalogue, modality: str, encoder: Any, *, cache_dir: str | os.PathLike[str] | None = None
) -> list[str | None]:
    """Each item's cache key for ``modality`` (None: no input), media hashed on the pass's worker processes."""
    processes = worker_processes(str(getattr(encoder, "device", "cpu")))
    stamps = catalogue.file_stamps(modality)  # as the load read them: no second stat of every file
    return catalogue_keys(
        catalogue.items, modality, catalogue.root, cache_dir=cache_dir, processes=processes, stamps=stamps
    )


def run_plan(
    plan: FeaturePlan, options: BatchOptions | None = None, progress: Progress | None = None
) -> dict[str, Features]:
    """Encode what the plan lacks (one forward per batch for every output) and return all outputs."""
    options = (options or BatchOptions()).for_encoder(plan.encoder)
    if progress:
        progress(0, len(plan.todo))
    if not plan.todo:
        return dict(plan.features)
    model = _model(plan.encoder, plan.outputs)
    workers = _workers(plan, options)
    with use_threads("batch", workers=workers, threads=options.threads):
        try:
            return store_encoded(plan, _forward_local(plan, model, options, workers), options, progress)
        except RuntimeError as exc:
            if "out of memory" not in str(exc):
                raise
            # a GPU too small for the batch (256 items on CUDA unless set): a setting to change, not a crash
            raise ConfigError(
                f"The {plan.modality} encoder ran out of device memory at {options.batch_size} items a batch; "
                f"the vectors written so far are kept: run again with a smaller batch_size "
                f"(--batch-size, RECSYS_BATCH_SIZE or batch_size in recsys.toml)."
            ) from exc


class Encoded(NamedTuple):
    """One forward pass over a batch: the keys of its good items, their outputs, and its failures."""

    keys: list[str]
    outputs: dict[str, np.ndarray] | None  # None when every item of the batch failed
    failures: list[tuple[str, str]]  # (item id, message)


def store_encoded(
    plan: FeaturePlan, results: Iterable[Encoded], options: BatchOptions, progress: Progress | None = None
) -> dict[str, Features]:
    """Append encoded batches, from wherever they were computed, to the plan's stores chunk by chunk.

    Every runner (this process, a Ray cluster) ends here, so the shards, the resume behaviour and the
    report of skipped items are the same whichever computed the vectors. Items that failed (a file
    the catalogue check accepted but decoding rejects, or non-finite model outputs) get no vector for
    this modality and are reported together in one warning line with their ids.
    """
    total = len(plan.todo)
    owners = {job.key: job.item_id for job in plan.todo}
    done = 0
    with _Chunk(plan, options.chunk_size, background=_on_cuda(plan.encoder)) as pending:
        for result in results:
            result = _drop_non_finite(result, owners)
            plan.failures.extend(result.failures)
            if result.outputs is not None and result.keys:
                pending.add(result.keys, result.outputs)
            done += len(result.keys) + len(result.failures)
            if progress:
                progress(done, total)
        pending.flush()
    if plan.failures:
        log.warning("%s", failure_summary(plan.modality, plan.failures))
    return dict(plan.features)


#: Failed items named in the summary line; the rest are counted.
SHOWN_FAILURES = 10


def failure_summary(modality: str, failures: Sequence[tuple[str, str]], count: int | None = None) -> str:
    """One line: how many items (``count``, else ``len(failures)``) have no ``modality`` vector, and
    the first few ids with the reason."""
    count = len(failures) if count is None else count
    named = failures[:SHOWN_FAILURES]
    shown = "; ".join(f"{item_id}: {message}" for item_id, message in named)
    more = f"; and {count - len(named)} more" if count > len(named) else ""
    return f"{count} item(s) have no {modality} vector (fix or replace their files): {shown}{more}"


def _drop_non_finite(result: Encoded, owners: dict[str, str]) -> Encoded:
    """A model output with NaN or infinity is a failure of that item, never a cached vector."""
    if result.outputs is None or not result.keys:
        return result
    ok = np.logical_and.reduce([np.isfinite(np.asarray(v)).all(axis=1) for v in result.outputs.values()])
    if ok.all():
        return result
    bad = [(owners.get(k, k), "the encoder returned NaN or infinite values") for k in np.asarray(result.keys)[~ok]]
    keys = [k for k, good in zip(result.keys, ok, strict=True) if good]
    outputs = {name: np.asarray(v)[ok] for name, v in result.outputs.items()} if keys else None
    return Encoded(keys, outputs, [*result.failures, *bad])


def _forward_local(plan: FeaturePlan, model: Any, options: BatchOptions, workers: int) -> Iterator[Encoded]:
    """Forward passes in batch order. On a GPU one batch stays in flight: the next batch is queued
    (:meth:`~recsys.encoders.base.Encoder.launch_batch`) before the previous one's outputs are read
    back, so the device computes while the host copies, fetches and writes; measured on an H200, a
    synchronous pass kept EfficientNet-Lite0 at 0.4-0.5x its raw forward. On the CPU each batch is
    finished before the next is fetched. Either way a killed run loses what was not yet written: the
    current cache chunk (``BatchOptions.chunk_size`` items at most), and on a GPU the chunk whose
    shards a background thread is writing (:class:`_Chunk`)."""
    ahead = _on_cuda(plan.encoder)
    finish_batch = getattr(model.preprocessor, "finish_batch", None)  # work left for the model's device
    owners = {job.key: job.item_id for job in plan.todo}
    waiting: tuple[Batch, Callable[[], dict[str, np.ndarray]] | None] | None = None
    for batch in _batches(plan, model.preprocessor, options, workers):
        if finish_batch is not None and batch.inputs is not None:
            batch = _finished_on_device(batch, finish_batch, str(getattr(plan.encoder, "device", "cpu")), owners)
        started = None
        if batch.inputs is not None:
            try:
                with _autocast(plan.encoder, options.precision):
                    started = _launch(model, batch.inputs)
            except BaseException:
                if waiting is not None:  # the batch before this one was computed: keep it
                    yield _finished(*waiting)
                raise
        if waiting is not None:
            yield _finished(*waiting)
        waiting = (batch, started)
        if not ahead:
            yield _finished(*waiting)
            waiting = None
    if waiting is not None:
        yield _finished(*waiting)


def _finished_on_device(
    batch: Batch, finish_batch: Callable[[Any, str], tuple[Any, dict[int, str]]], device: str, owners: dict[str, str]
) -> Batch:
    """The batch with its preprocessing finished on ``device``; items that failed there move to its failures."""
    inputs, failed = finish_batch(batch.inputs, device)
    if not failed:
        return Batch(batch.keys, inputs, batch.failures)
    keep = [i for i in range(len(batch.keys)) if i not in failed]
    failures = [*batch.failures, *((owners.get(batch.keys[i], batch.keys[i]), failed[i]) for i in sorted(failed))]
    return Batch([batch.keys[i] for i in keep], inputs[keep] if keep else None, failures)


def _launch(model: Any, inputs: Any) -> Callable[[], dict[str, np.ndarray]]:
    launch = getattr(model, "launch_batch", None)
    if launch is not None:
        return launch(inputs)
    out = model.forward_batch(inputs)
    return lambda: out


def _finished(batch: Batch, started: Callable[[], dict[str, np.ndarray]] | None) -> Encoded:
    return Encoded(batch.keys, None if started is None else started(), batch.failures)


def _on_cuda(encoder: Any) -> bool:
    return str(getattr(encoder, "device", "cpu")).startswith("cuda")


def catalogue_features(
    catalogue: Catalogue,
    modality: str,
    encoder: Any,
    outputs: Sequence[str] = ("embedding",),
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    options: BatchOptions | None = None,
) -> dict[str, Features]:
    """Every requested output of ``encoder`` for every catalogue item, computing only what the cache lacks."""
    options = options or BatchOptions()
    plan = plan_features(catalogue, modality, encoder, outputs, cache_dir=cache_dir, precision=options.precision)
    return run_plan(plan, options, progress)


class _Chunk:
    """Outputs of the last few batches, written as one shard per output once ``size`` items are in.

    With ``background`` (on a GPU) each full chunk is joined, written and filled into the plan's
    features on a thread of its own while the main process goes on queueing batches: there the main
    process, not the device, set the pace, and writing the shards took ~10 ms of every batch of 256
    pictures on an H100 host. One chunk is written at a time, so a killed run loses at most that
    chunk beside the one being filled. Use it as a context manager: leaving waits for the last
    write and raises what it raised.
    """

    def __init__(self, plan: FeaturePlan, size: int, *, background: bool = False) -> None:
        self.plan = plan
        self.size = size
        self.keys: list[str] = []
        self.parts: dict[str, list[np.ndarray]] = {name: [] for name in plan.outputs}
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="recsys-shards") if background else None
        self._writing: Future[None] | None = None

    def __enter__(self) -> _Chunk:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            self._wait()
        except Exception:
            if exc_type is None:
                raise
            log.exception("writing a cache shard failed too")  # the error already on its way matters more
        finally:
            if self._writer is not None:
                self._writer.shutdown()

    def add(self, keys: list[str], out: dict[str, np.ndarray]) -> None:
        self.keys.extend(keys)
        for name in self.plan.outputs:
            self.parts[name].append(np.asarray(out[name], dtype=np.float32))
        if len(self.keys) >= self.size:
            self.flush()

    def flush(self) -> None:
        """Hand the chunk over: on this thread, or to the writer thread once its last chunk is in."""
        if not self.keys:
            return
        keys, parts = self.keys, self.parts
        self.keys = []
        self.parts = {name: [] for name in self.plan.outputs}
        if self._writer is None:
            self._store(keys, parts)
            return
        self._wait()
        self._writing = self._writer.submit(self._store, keys, parts)

    def _store(self, keys: list[str], parts: dict[str, list[np.ndarray]]) -> None:
        """Append each output's new rows to its store (only keys it lacked), then to the plan's features.

        On a GPU this whole step runs on the writer thread: with only the file writes there, handing
        chunks over took the main process 2.6-3.3 s of 114k-228k-picture passes on an H200 host, 1.9 s
        of the 114k pass after (``benchmarks/encoding_stages.py``; the whole pass did not move)."""
        for name, store in self.plan.stores.items():
            vectors = np.concatenate(parts[name], axis=0)
            missing = self.plan.missing[name]
            rows = [i for i, k in enumerate(keys) if k in missing]
            if rows:
                store.append([keys[i] for i in rows], vectors[rows])
            self.plan.fill(name, keys, vectors)

    def _wait(self) -> None:
        if self._writing is not None:
            writing, self._writing = self._writing, None
            writing.result()


def _workers(plan: FeaturePlan, options: BatchOptions) -> int:
    """Decode/preprocess processes for this pass (:func:`recsys.threads.worker_processes` by default)."""
    if plan.modality == "text" or len(plan.todo) <= options.batch_size:
        return 0  # nothing to decode, or too little to pay for starting a process
    if options.workers is not None:
        return options.workers
    return worker_processes(str(getattr(plan.encoder, "device", "cpu")))


def _batches(plan: FeaturePlan, preprocessor: Preprocessor, options: BatchOptions, workers: int) -> Iterator[Batch]:
    """Collated batches of the plan's items: from ``workers`` processes, or in-process when 0."""
    dataset = ItemDataset(plan.todo, plan.modality, preprocessor)
    cuda = _on_cuda(plan.encoder)
    if workers == 0:
        collate = Collate(preprocessor)
        for start in range(0, len(dataset), options.batch_size):
            yield collate([dataset[i] for i in range(start, min(start + options.batch_size, len(dataset)))])
        return
    from torch.utils.data import DataLoader

    loader = DataLoader(
        dataset,  # type: ignore[arg-type]  # map-style: __len__ + __getitem__
        batch_size=options.batch_size,
        num_workers=workers,
        collate_fn=Collate(preprocessor, tensors=True),
        pin_memory=cuda and options.pin_memory is not False,
        worker_init_fn=one_thread_per_worker,
        prefetch_factor=4,
    )
    yield from loader
