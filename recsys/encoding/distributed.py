"""Encoding a catalogue on a Ray cluster (Ray Data), for catalogues beyond one machine.

The same pass as :func:`recsys.encoding.run_plan`, with the work spread over a cluster:

1. the plan's missing items (key, item id, source) become a Ray dataset in blocks;
2. decode + preprocess run as Ray tasks (one CPU and one thread each), with the same decoding
   (:func:`recsys.encoding.cache.decode_source`, :mod:`recsys.media`) and the encoder's picklable
   ``preprocessor`` as the local DataLoader workers (:class:`recsys.encoding.ItemDataset`); an item
   that fails becomes a row carrying its error, never a failed task;
3. a fixed pool of actors each builds the encoder once, from an :class:`EncoderRecipe` (registry
   name + device: a loaded model is never pickled), and runs one ``forward_batch`` per batch for
   every output, on a GPU per actor when the encoder's device is CUDA;
4. this process streams the results and appends them with :func:`recsys.encoding.store_encoded`,
   to the same :class:`recsys.encoding.cache.FeatureStore` shards as the local path: a killed run resumes
   the same way and both paths share one cache.

Media are read by the tasks where they run, so on a multi-node cluster the catalogue must live on
storage every node sees at the same path, and every node needs this package installed. Only this
process writes the cache.

Threads follow :mod:`recsys.threads` (batch role): an actor's torch / BLAS threads equal the CPUs it
reserves, a decode task uses one, so the cluster is never oversubscribed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.encoders.base import Preprocessor
from recsys.encoding import (
    BatchOptions,
    Encoded,
    FeaturePlan,
    ItemDataset,
    Job,
    Progress,
    _autocast,
    _model,
    store_encoded,
)
from recsys.encoding.cache import Features
from recsys.errors import RecsysError
from recsys.threads import use_threads

log = logging.getLogger(__name__)

#: The tested Ray version; ``client`` adds what ``ray://`` addresses need.
RAY_REQUIREMENT = "ray[data,client]==2.60.0"
#: Decode tasks take at most this many batches of items at a time (one Ray block each).
BLOCK_BATCHES = 4


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401  # the data library is an extra of the ray package
    except ImportError as exc:
        raise RecsysError(
            f'Indexing on Ray needs Ray Data, which is not installed ({exc}): pip install "{RAY_REQUIREMENT}"'
        ) from None
    return ray


@contextlib.contextmanager
def ray_cluster(address: str) -> Iterator[None]:
    """Connected to a Ray cluster while inside: ``auto`` (the one ``RAY_ADDRESS`` or ``ray start`` on this
    machine points to, else a new :func:`local_cluster`), or an address (``host:6379``, ``ray://host:10001``).

    A process already connected (``ray.init`` called by the caller) is used as is and left connected;
    otherwise this disconnects on exit, which also stops a local cluster it started.
    """
    ray = _import_ray()
    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address == "auto" and not os.environ.get("RAY_ADDRESS") and not _last_started_cluster_answers():
        log.info("no running Ray cluster found: starting a local one on 127.0.0.1")
        with local_cluster():
            yield
        return
    target = os.environ.get("RAY_ADDRESS", "auto") if address == "auto" else address
    try:
        _check_reachable(target)
        ray.init(address=address)
    except Exception as exc:  # ray raises ConnectionError, ValueError, RuntimeError, gRPC errors...
        raise RecsysError(
            f"Cannot connect to the Ray cluster at {target!r} ({type(exc).__name__}: {exc}). Start one with "
            "'ray start --head' and use --ray auto, or give its address (host:6379, or ray://host:10001 "
            "for Ray Client)."
        ) from None
    try:
        yield
    finally:
        ray.shutdown()


def _last_started_cluster_answers() -> bool:
    """Whether the cluster ``ray start`` last recorded on this machine still listens (a cluster that was
    killed leaves its address behind, and Ray would retry it for minutes)."""
    from ray._private.utils import read_ray_address

    recorded = read_ray_address()
    if not recorded:
        return False
    try:
        _check_reachable(recorded)
    except OSError:
        log.warning("the Ray cluster last started on this machine (%s) is gone", recorded)
        return False
    return True


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast when nothing listens at ``host:port``: Ray itself retries a dead address for minutes."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # not host:port; ray.init says what is wrong with it
    with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
        pass


#: Ray's switch for one-machine clusters (named after the platforms where it is the default).
_SINGLE_MACHINE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@contextlib.contextmanager
def local_cluster(**init_args: Any) -> Iterator[str]:
    """A Ray cluster on this machine only while inside (every process on 127.0.0.1, no dashboard, no
    usage statistics); yields its address. ``init_args`` go to ``ray.init`` (``num_cpus``, ...).

    Ray turns a node address of 127.0.0.1 into the machine's reachable one and listens on every
    interface unless multi-machine clusters are switched off, in this process (which reads the
    switch when ray is imported) and in the cluster's processes (which inherit the environment).
    """
    ray = _import_ray()
    from ray._private import ray_constants

    saved = {name: os.environ.get(name) for name in (_SINGLE_MACHINE, "RAY_USAGE_STATS_ENABLED")}
    enabled = ray_constants.ENABLE_RAY_CLUSTER
    os.environ.update({_SINGLE_MACHINE: "0", "RAY_USAGE_STATS_ENABLED": "0"})
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(address="local", include_dashboard=False, **init_args)
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        ray_constants.ENABLE_RAY_CLUSTER = enabled
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass(frozen=True)
class EncoderRecipe:
    """How an actor builds its encoder: the registry name and the device (picklable, unlike a model)."""

    name: str
    device: str

    def __call__(self) -> Any:
        from recsys.encoders import create_encoder

        return create_encoder(self.name, device=self.device)


@dataclass(frozen=True)
class Layout:
    """Model actors and what each reserves; decode tasks get the rest of the cluster, one CPU each.

    ``decoders`` caps the decode tasks at a time (the CPUs they share still limit them).
    """

    actors: int
    actor_cpus: int
    actor_gpus: int
    decoders: int


def _decoders(free_cpus: int, actors: int) -> int:
    """The decode pool's size: the free CPUs, but never the actor pool's size, for which Ray Data fuses
    the two stages and decodes inside the actors, one item after another."""
    free = max(1, free_cpus)
    return free + 1 if free == actors else free


def plan_layout(resources: Mapping[str, float], cuda: bool, actors: int | None = None) -> Layout:
    """Split a cluster's resources between model actors and decoding.

    CUDA: one actor per GPU (one CPU each; the model waits on the GPU). CPU: a quarter of the
    cores (at least one) stay for decoding, which costs ~2 ms an image against ~20 ms of forward
    pass, and the rest go to actors of about four threads (torch gains little beyond that per process).
    """
    cpus = int(resources.get("CPU", 0))
    if actors is not None and actors < 1:
        raise RecsysError(f"ray_actors must be at least 1, got {actors}.")
    if cuda:
        gpus = int(resources.get("GPU", 0))
        if gpus < 1:
            raise RecsysError("The encoder runs on CUDA but the Ray cluster has no GPU; use --device cpu.")
        count = actors or gpus
        if count > gpus or cpus < count + 1:
            raise RecsysError(
                f"{count} GPU actors need {count} GPUs and {count + 1} CPUs; the Ray cluster has {gpus} and {cpus}."
            )
        return Layout(count, 1, 1, _decoders(cpus - count, count))
    decoding = max(1, cpus // 4)
    count = actors or max(1, (cpus - decoding) // 4)
    if cpus < count + 1:
        raise RecsysError(
            f"{count} model actors need {count + 1} CPUs (one each, one for decoding); the Ray cluster has {cpus}."
        )
    per_actor = max(1, (cpus - min(decoding, cpus - count)) // count)
    return Layout(count, per_actor, 0, _decoders(cpus - count * per_actor, count))


# -- what runs on the cluster -------------------------------------------------------------------------
_one_thread = False


def decode_block(block: Any, modality: str, preprocessor: Preprocessor) -> Any:
    """Ray task: decode + preprocess a block of jobs; each row gets its pickled input or its error."""
    import pyarrow as pa

    global _one_thread
    if not _one_thread:  # once per worker process: decoding must not crowd out the actors
        use_threads("batch", threads=1)
        _one_thread = True
    jobs = [Job(*row) for row in zip(*(block[c].to_pylist() for c in ("key", "item_id", "source")), strict=True)]
    dataset = ItemDataset(jobs, modality, preprocessor)
    prepared = [dataset[i] for i in range(len(dataset))]
    return pa.table(
        {
            "key": pa.array([p.key for p in prepared], pa.string()),
            "item_id": pa.array([p.item_id for p in prepared], pa.string()),
            "value": pa.array(
                [b"" if p.error else pickle.dumps(p.value, protocol=5) for p in prepared], pa.large_binary()
            ),
            "error": pa.array([p.error for p in prepared], pa.string()),
        }
    )


class ForwardActor:
    """Ray actor: builds the encoder once, then one ``forward_batch`` per batch for every output."""

    def __init__(self, recipe: Callable[[], Any], outputs: Sequence[str], precision: str, threads: int) -> None:
        use_threads("batch", threads=threads)
        self.encoder = recipe()
        self.model = _model(self.encoder, outputs)
        self.outputs = tuple(outputs)
        self.precision = precision

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        errors = batch["error"].to_pylist()
        good = [i for i, error in enumerate(errors) if error is None]
        columns: dict[str, list[bytes]] = {name: [b""] * len(errors) for name in self.outputs}
        if good:
            values = batch["value"].to_pylist()
            inputs = self.model.preprocessor.collate([pickle.loads(values[i]) for i in good])
            with _autocast(self.encoder, self.precision):
                out = self.model.forward_batch(inputs)
            for name in self.outputs:
                rows = np.asarray(out[name], dtype=np.float32)
                for row, i in zip(rows, good, strict=True):
                    columns[name][i] = row.tobytes()
        table = batch.select(["key", "item_id", "error"])
        for name in self.outputs:
            table = table.append_column(_column(name), pa.array(columns[name], pa.large_binary()))
        return table


def _column(output: str) -> str:
    return f"out.{output}"


# -- the driver ---------------------------------------------------------------------------------------
def run_plan_on_ray(
    plan: FeaturePlan,
    recipe: Callable[[], Any],
    options: BatchOptions | None = None,
    progress: Progress | None = None,
    *,
    actors: int | None = None,
) -> dict[str, Features]:
    """Like :func:`recsys.encoding.run_plan`, with decoding and the model on the connected Ray cluster
    (see :func:`ray_cluster`). ``recipe`` builds the plan's encoder inside each actor."""
    options = (options or BatchOptions()).for_encoder(plan.encoder)
    if progress:
        progress(0, len(plan.todo))
    if not plan.todo:
        return dict(plan.features)
    ray = _import_ray()
    if not ray.is_initialized():
        raise RecsysError(
            "Not connected to a Ray cluster: run inside recsys.encoding.distributed.ray_cluster(address)."
        )
    cuda = str(getattr(plan.encoder, "device", "cpu")).startswith("cuda")
    layout = plan_layout(ray.cluster_resources(), cuda, actors)
    log.info(
        "%s on Ray: %d items, %d model actor(s) x %d CPU(s)%s",
        plan.modality,
        len(plan.todo),
        layout.actors,
        layout.actor_cpus,
        " + 1 GPU" if layout.actor_gpus else "",
    )
    dataset = _dataset(plan, recipe, options, layout)
    try:
        return store_encoded(plan, _results(dataset, plan.outputs, options.batch_size), options, progress)
    except RecsysError:
        raise
    except Exception as exc:
        cause = _user_error(exc)
        if cause is not None:  # e.g. missing weights on a worker node: the user's message, not a trace
            raise RecsysError(str(cause)) from exc
        raise


def _dataset(plan: FeaturePlan, recipe: Callable[[], Any], options: BatchOptions, layout: Layout) -> Any:
    import pyarrow as pa
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the product reports progress itself (recsys.progress)
    jobs = pa.table(
        {
            "key": pa.array([j.key for j in plan.todo], pa.string()),
            "item_id": pa.array([j.item_id for j in plan.todo], pa.string()),
            "source": pa.array([j.source for j in plan.todo], pa.string()),
        }
    )
    rows = max(1, min(options.batch_size * BLOCK_BATCHES, math.ceil(len(jobs) / layout.decoders)))
    blocks = [jobs.slice(start, rows) for start in range(0, len(jobs), rows)]
    preprocessor = _model(plan.encoder, plan.outputs).preprocessor
    # the actors' models take what a host-side preprocessor gives (work left for a device is done here)
    preprocessor = getattr(preprocessor, "host_only", lambda: preprocessor)()
    threads = options.threads or layout.actor_cpus
    return (
        ray.data.from_arrow(blocks)
        .map_batches(
            decode_block,
            batch_size=None,  # a whole block per task
            batch_format="pyarrow",
            fn_kwargs={"modality": plan.modality, "preprocessor": preprocessor},
            compute=ray.data.TaskPoolStrategy(size=layout.decoders),
            num_cpus=1,
        )
        .map_batches(
            ForwardActor,
            batch_size=options.batch_size,
            batch_format="pyarrow",
            fn_constructor_kwargs={
                "recipe": recipe,
                "outputs": plan.outputs,
                "precision": options.precision,
                "threads": threads,
            },
            compute=ray.data.ActorPoolStrategy(size=layout.actors),
            num_cpus=layout.actor_cpus,
            num_gpus=layout.actor_gpus or None,
        )
    )


def _results(dataset: Any, outputs: Sequence[str], batch_size: int) -> Iterator[Encoded]:
    """The actors' output as :class:`recsys.encoding.Encoded` batches, as it arrives (batches of the local
    path's size, so the shards are cut alike)."""
    for table in dataset.iter_batches(batch_size=batch_size, batch_format="pyarrow"):
        keys = table["key"].to_pylist()
        item_ids = table["item_id"].to_pylist()
        errors = table["error"].to_pylist()
        good = [i for i, error in enumerate(errors) if error is None]
        failures = [(item_ids[i], errors[i]) for i, error in enumerate(errors) if error is not None]
        out = None
        if good:
            out = {}
            for name in outputs:
                cells = table[_column(name)].to_pylist()
                out[name] = np.stack([np.frombuffer(cells[i], dtype=np.float32) for i in good])
        yield Encoded([keys[i] for i in good], out, failures)


def _user_error(exc: BaseException) -> BaseException | None:
    """A :class:`RecsysError` raised on the cluster, found through Ray's wrappers, if there is one."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, RecsysError):
            return current
        stack.extend([current.__cause__, current.__context__, getattr(current, "cause", None)])
    return None
