"""One FAISS index per vector field, keyed by row number and searched with row selectors.

Small fields use an exact flat index; large ones an ANN index: IVF with 8-bit codes by default,
HNSW as the alternative. Measured with ``benchmarks/store.py`` (100k clustered items, 384-d and
1280-d, 2 busy cores, k=100): IVF nprobe=96 recall@10 0.96-0.97 at p50 1.2 / 3.5 ms, HNSW32
efSearch=512 recall@10 0.75-0.79 at p50 1.9 / 3.6 ms, and under a 10% category filter IVF
stayed at 1.7 / 3.2 ms where HNSW took 13 / 21 ms; IVF also builds faster in less RAM. Both hold
row numbers as FAISS ids, so filters (category, dead rows, excluded ids) are one bitmap over rows
passed INTO the search: FAISS skips non-matching rows while it explores, instead of the caller
dropping them afterwards and coming back with fewer than k. Under a category filter an IVF search
searches lists of that top-level category's own (:mod:`recsys.store.partition`, built from the
index's codes in the background when first asked for), not the shared lists with ~20 skipped rows
per qualifying one at 1M items. Without a category, a large IVF index picks its candidates with
fast-scan product codes (:mod:`recsys.store.fastscan`, also built in the background) and scores
only those with its own codes.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsys.atomic import write_with
from recsys.cachefile import file_crc32
from recsys.errors import InputError
from recsys.paths import file_problem
from recsys.store import fastscan, partition
from recsys.store.fastscan import FastScanLists
from recsys.store.partition import CategoryLists
from recsys.store.rows import Selection

ANN_KINDS = ("hnsw", "ivf")
FILTER_PROBING = ("lists", "widen")
CODES = {"sq8": "SQ8", "fp16": "SQfp16", "flat": "Flat"}
#: Rows of the training sample a reduced index's principal components are fitted on (a 1280-d
#: covariance settles well before this, in a few seconds).
FIT_ROWS = 50_000


@dataclass(frozen=True)
class AnnParams:
    """How ANN indexes are built and searched; every value can be overridden when opening a store."""

    kind: str = "ivf"  # "ivf" | "hnsw"
    codes: str = "sq8"  # vector codes held in the index: "sq8" | "fp16" | "flat" (scores are re-ranked exactly)
    hnsw_m: int = 32
    ef_construction: int = 64
    ef_search: int = 256
    ivf_nlist: int = 0  # 0: 4 * sqrt(n) at build time (at most n / 39)
    # 64: recall@10 0.96 on the hardest synthetic data (tests/store); 32 gave 0.90, 96 0.99 at 1.5x the time
    nprobe: int = 64
    max_ef: int = 4096  # ceiling for ef / nprobe growth under selective filters
    # A filter passing a share s of the items widens nprobe / ef by (1 / s) ** filter_widening:
    # 1 keeps the number of qualifying vectors scanned constant; less trusts that filters (categories)
    # cluster with the vectors, as they do in real catalogues.
    filter_widening: float = 1.0
    # IVF under a filter: "lists" probes the nearest lists until they hold as many qualifying
    # vectors as an unfiltered search would scan in a catalogue of only the qualifying items
    # (times filter_scan), counting each list's qualifying rows; "widen" scales nprobe by
    # filter_widening alone, blind to where the filter's rows lie.
    filter_probing: str = "lists"
    # On validation queries at 1M items (category filters of 2-12%), 1.0 / 0.6 / 0.4 scanned gave
    # recall@10 of early 0.992 / 0.992 / 0.992, late 0.984 / 0.984 / 0.984, rrf 0.970 / 0.966 / 0.954
    # at late p50 7.3 / 6.3 / 5.7 ms.
    filter_scan: float = 0.6
    # IVF under a category filter whose top-level category holds at most this share of the
    # field's rows searches IVF lists of that category's own (recsys.store.partition; built on
    # first use, at most one more copy of the codes in all): the shared lists made a filtered
    # search walk ~20 rows for each one it could return under a 5% category. 0 turns this off.
    partition_share: float = 0.5
    # Lists a search of a category's own lists probes: partition_scan * nprobe (they are as many as
    # a catalogue of the category alone would have). On validation queries at 1M items rrf recall@10
    # with a category filter was 0.974 / 0.978 / 0.981 / 0.983 at 0.6 / 0.8 / 1.0 / 1.25, and 0.980
    # walking the shared lists.
    partition_scan: float = 1.0
    # Build a category's own lists (and the fast-scan codes) in a background thread (the first
    # searches walk the shared lists meanwhile) instead of inside the first search that wants them:
    # at 1M items a category's build takes 0.2-0.5 s per field, and a fused query searching 4 fields
    # waited 0.8-2.5 s on them.
    partition_background: bool = True
    # An IVF index of at least fast_scan_above rows picks an unfiltered search's candidates with
    # fast-scan product codes (recsys.store.fastscan: a copy of an eighth of the float32 vectors,
    # built in ~13 s per 1M 384-d rows), at least fast_scan_depth of them and 2 per hit wanted, and
    # scores only those with its own codes. 0 turns this off. On validation queries at 1M items
    # (in-process, alternating) the unfiltered means of early / late / rrf fell from 8.9 / 11.4 /
    # 15.6 to 7.2 / 9.8 / 12.3 ms, recall@10 0.971 -> 0.969, 0.991, 0.980 as they were; at 100k
    # items (1,264 lists: 3-10k rows a search) the fixed costs outweigh the scan: early / late 4.9 /
    # 5.7 -> 5.8 / 6.9 ms, rrf 9.7 either way.
    fast_scan_above: int = 500_000
    fast_scan_depth: int = 1000
    # An IVF index over a field wider than reduce_above scans its vectors' first reduced_dims
    # principal components (projected uncentred, fitted on the training sample): the scan is bound
    # by arithmetic, so its cost falls with the dimensions. Its scores leave out the rest, so hits
    # are re-scored with the stored vectors, or flagged rough (Hits.rough) for a caller that scores
    # them itself. At 1M synthetic items an unfiltered 1280-d image search fell from 5.1 to 1.2 ms
    # (one core); on validation queries the exact top 100 was within the top 500 by 256 components
    # both there (77% of the variance kept) and on the real 25k catalogue's image field (88%).
    # 0 turns it off.
    reduce_above: int = 512
    reduced_dims: int = 256

    def __post_init__(self) -> None:
        if self.kind not in ANN_KINDS:
            raise InputError(f"unknown ANN index kind '{self.kind}'; use one of {', '.join(ANN_KINDS)}")
        if self.codes not in CODES:
            raise InputError(f"unknown ANN codes '{self.codes}'; use one of {', '.join(CODES)}")
        if self.filter_probing not in FILTER_PROBING:
            raise InputError(f"unknown filter_probing '{self.filter_probing}'; use one of {', '.join(FILTER_PROBING)}")
        scan = self.partition_scan
        if isinstance(scan, bool) or not isinstance(scan, int | float) or not scan > 0:
            raise InputError(f"partition_scan must be a number above 0, not {scan!r}")
        if not isinstance(self.partition_background, bool):
            raise InputError(f"partition_background must be true or false, not {self.partition_background!r}")
        for name, least in (("fast_scan_above", 0), ("fast_scan_depth", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise InputError(f"{name} must be a whole number of {least} or more, not {value!r}")
        if self.reduce_above < 0 or self.reduced_dims < 0:
            raise InputError("reduce_above and reduced_dims must be 0 or more (0 reduced_dims: no reduction)")

    def factory(self, n: int, dim: int = 0) -> str:
        """The FAISS factory string for an index over about ``n`` vectors of ``dim`` dimensions."""
        if self.kind == "hnsw":
            return f"IDMap,HNSW{self.hnsw_m},{CODES[self.codes]}"
        ivf = f"IVF{self.nlist_for(n)},{CODES[self.codes]}"
        return f"PCA{self.reduced_dims},{ivf}" if self.reduces(dim) else ivf

    def reduces(self, dim: int) -> bool:
        """Whether an IVF index over ``dim``-d vectors scans their principal components instead."""
        return self.kind == "ivf" and 0 < self.reduced_dims < dim and dim > self.reduce_above

    def nlist_for(self, n: int) -> int:
        """IVF lists for ``n`` vectors: 4 sqrt(n) (FAISS wants >= 39 training points per centroid)."""
        return self.ivf_nlist or max(1, min(int(4 * math.sqrt(max(n, 1))), n // 39))


class FieldIndex:
    """A FAISS index over the rows that have one field; ids are row numbers."""

    def __init__(self, index, spec: str) -> None:  # noqa: ANN001 (faiss has no type stubs)
        self.index = index
        self.spec = spec
        self._row_lists: np.ndarray | None = None  # IVF: the list of each row (-1: not indexed)
        self._generation = 0  # bumped by every add, so statistics derived from the lists expire
        self._centroid_matrix: np.ndarray | None = None
        # top-level category -> (generation built at, its own IVF lists or None when too broad,
        # the category's rows it was built from)
        self._partitions: dict[str, tuple[int, object, np.ndarray]] = {}
        self._partitions_before: dict[str, CategoryLists] = {}  # lists writes dropped, which the next ones extend
        self._partition_lock = threading.Lock()
        self._building: set[tuple[str, ...]] = set()  # what the background thread is building
        self._fast: tuple[int, FastScanLists | None] | None = None  # (generation built at, fast-scan codes)
        self._fast_before: FastScanLists | None = None  # the codes a write dropped, which the next ones extend
        self._write_lock = threading.Lock()  # an add, or a background build reading the lists
        self._projection: np.ndarray | None = None  # (reduced dims, dim) of a reduced index
        self.mapped = False  # the index's codes are the saved file's pages (see load), not memory of its own
        self._file: tuple[int, Path] | None = None  # (generation, the saved file this index equals then)

    @property
    def exact(self) -> bool:
        return self.spec == "flat"

    @property
    def ivf(self) -> bool:
        return any(part.startswith("IVF") for part in self.spec.split(","))

    @property
    def reduced(self) -> bool:
        """Whether the index holds fewer dimensions than the field: its scores are then coarse."""
        return self.spec.startswith("PCA")

    def stale(self, n: int, params: AnnParams) -> str | None:
        """Why an IVF index should be rebuilt for ``n`` vectors under ``params``, or None: trained
        for far fewer vectors (lists twice too few make every search scan twice the rows, so it is
        rebuilt at each ~4x growth; the rebuilds add up to a constant factor of the final build), or
        reduced to principal components where ``params`` say otherwise (a store built before the
        reduction, or reopened with other ``reduce_above`` / ``reduced_dims``)."""
        if not self.ivf:
            return None
        every = "every dimension"
        wanted = f"{params.reduced_dims} principal components" if params.reduces(int(self.index.d)) else every
        have = f"{self.spec.split(',')[0][3:]} principal components" if self.reduced else every
        if have != wanted:
            return f"it scans {have}, the store's options ask for {wanted}"
        nlist = next(int(part[3:]) for part in self.spec.split(",") if part.startswith("IVF"))
        if not params.ivf_nlist and 2 * nlist <= params.nlist_for(n):
            return f"its {nlist} lists were sized for far fewer than {n:,} vectors"
        return None

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def flat(cls, dim: int) -> FieldIndex:
        import faiss

        return cls(faiss.index_factory(dim, "IDMap,Flat", faiss.METRIC_INNER_PRODUCT), "flat")

    @classmethod
    def trained(cls, dim: int, params: AnnParams, n: int, sample: np.ndarray) -> FieldIndex:
        """An empty ANN index for about ``n`` vectors, trained on ``sample`` (SQ ranges, IVF centroids)."""
        import faiss

        spec = params.factory(n, dim)
        if params.reduces(dim):
            ivf = faiss.index_factory(params.reduced_dims, spec.split(",", 1)[1], faiss.METRIC_INNER_PRODUCT)
            index = faiss.IndexPreTransform(_projection(sample, params.reduced_dims), ivf)
        else:
            index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
        if params.kind == "hnsw":
            faiss.downcast_index(index.index).hnsw.efConstruction = params.ef_construction
        if not index.is_trained:
            index.train(np.ascontiguousarray(sample, dtype=np.float32))
        return cls(index, spec)

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        if len(rows):
            with self._write_lock:  # FAISS grows the lists in place: no build may read them meanwhile
                if self.mapped:
                    self._own_copy()
                vectors = np.ascontiguousarray(vectors, dtype=np.float32)
                self.index.add_with_ids(vectors, np.asarray(rows, dtype=np.int64))
                self._row_lists = None
                self._generation += 1
            with self._partition_lock:
                self._partitions_before.update({k: e[1] for k, e in self._partitions.items() if e[1] is not None})
                self._partitions.clear()
                if self._fast is not None and self._fast[1] is not None:
                    self._fast_before = self._fast[1]
                self._fast = None

    def _own_copy(self) -> None:
        """Replace a mapped index by a copy in memory, which can grow: FAISS aborts the whole process
        (an assertion, not an exception) when rows are added to codes it reads from a mapped file.
        The file read again without mapping it, where the index is still its file: at 1M items,
        copying the four mapped indexes through FAISS's serialization took 10.6 s of a store's open
        after a small write."""
        import faiss

        copy = None
        if self._file is not None and self._file[0] == self._generation:  # it is its file: read it again
            try:
                copy = faiss.read_index(str(self._file[1]))
            except RuntimeError:  # gone meanwhile (a writer replaced it): copy the mapped one
                copy = None
        if copy is None or copy.ntotal != self.index.ntotal:
            copy = faiss.deserialize_index(faiss.serialize_index(self.index))
        self.index = copy
        self.mapped = False

    def search(
        self,
        query: np.ndarray,
        k: int,
        allowed: Selection | None,
        selectivity: float,
        params: AnnParams,
        breadth: int = 1,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``k`` (row, score) pairs among the ``allowed`` rows (a :class:`Selection`, or
        None for all). Exact for a flat index; for ANN, ``breadth`` > 1 widens the search (a retry
        after too few results) and a selective filter widens it in proportion."""
        import faiss

        sel = None
        if allowed is not None:
            bits = allowed.bits
            sel = faiss.IDSelectorBitmap(allowed.mask.shape[0], faiss.swig_ptr(bits))
        widen = breadth / max(selectivity, 1e-6) ** params.filter_widening
        if self.exact:
            sp = faiss.SearchParameters(sel=sel)
        elif self.ivf:
            fast = self._fast_scan(params) if allowed is None or allowed.partition is None else None
            if fast is not None:
                return self._search_fast(query, k, fast, sel, math.ceil(params.nprobe * widen), params)
            if allowed is not None and params.filter_probing == "lists":
                return self._search_lists(query, k, allowed, sel, params, breadth)
            nlist = faiss.extract_index_ivf(self.index).nlist
            sp = faiss.SearchParametersIVF(sel=sel, nprobe=int(min(nlist, math.ceil(params.nprobe * widen))))
        else:
            ef = min(params.max_ef, max(params.ef_search, k) * widen)
            sp = faiss.SearchParametersHNSW(sel=sel, efSearch=int(max(ef, k)))
        with _one_thread():
            scores, ids = self.index.search(query[None, :], k, params=sp)
        found = ids[0] >= 0
        return ids[0][found], scores[0][found].astype(np.float32)

    def _search_lists(
        self, query: np.ndarray, k: int, allowed: Selection, sel, params: AnnParams, breadth: int  # noqa: ANN001
    ) -> tuple[np.ndarray, np.ndarray]:
        """IVF search under a filter, probing lists nearest first until they hold enough qualifying rows.

        Widening nprobe by 1 / selectivity assumes the filter's rows are spread evenly over the
        lists; a category's items cluster, so near the query most lists hold many of them, and
        counting them stops far sooner (and widens further where they are rare).
        """
        import faiss

        x = np.ascontiguousarray(self._reduce(query)[None, :], dtype=np.float32)
        with _one_thread():
            part, only_allowed = self._category_lists(allowed, params)
            if part is not None and only_allowed:  # every row on its lists qualifies: no rows to count
                return part.search(x, k, math.ceil(params.partition_scan * params.nprobe * breadth))
            walk = faiss.extract_index_ivf(self.index) if part is None else part.index
            lists, centroid = self.probe_lists(x, allowed, params, breadth, part, only_allowed)
            scores = np.empty((1, k), dtype=np.float32)
            ids = np.empty((1, k), dtype=np.int64)
            sp = faiss.SearchParametersIVF(sel=None if only_allowed else sel, nprobe=lists.shape[1])
            sp_ptr = faiss.swig_ptr
            walk.search_preassigned_c(
                1, sp_ptr(x), k, sp_ptr(lists), sp_ptr(centroid), sp_ptr(scores), sp_ptr(ids), False, sp
            )
        found = ids[0] >= 0
        return ids[0][found], scores[0][found]

    def _search_fast(
        self, query: np.ndarray, k: int, fast: FastScanLists, sel, nprobe: int, params: AnnParams  # noqa: ANN001
    ) -> tuple[np.ndarray, np.ndarray]:
        """IVF search of the ``nprobe`` nearest lists: the fast-scan codes pick the candidates (among
        the rows ``sel`` lets through, or all), the index's own codes score them, walking only the
        lists that hold one with a bitmap of them."""
        import faiss

        x = np.ascontiguousarray(self._reduce(query)[None, :], dtype=np.float32)
        scores = self._centroids() @ x[0]
        nprobe = int(min(len(scores), nprobe))
        nearest = np.argpartition(-scores, nprobe - 1)[:nprobe] if nprobe < len(scores) else np.arange(len(scores))
        nearest = nearest[np.argsort(-scores[nearest], kind="stable")]
        row_lists = self._lists_of_rows()
        with _one_thread():
            depth = max(params.fast_scan_depth, fastscan.CANDIDATES_PER_HIT * k)
            rows = fast.candidates(x, depth, nearest, scores[nearest], sel)
            if not rows.size:  # nothing the filter lets through on these lists: the caller widens
                return rows, np.zeros(0, dtype=np.float32)
            bits = np.zeros((row_lists.size + 7) // 8, dtype=np.uint8)
            np.bitwise_or.at(bits, rows >> 3, np.left_shift(1, rows & 7).astype(np.uint8))
            held = np.zeros(len(scores), dtype=bool)
            held[row_lists[rows]] = True
            lists = nearest[held[nearest]]
            found = np.empty((1, k), dtype=np.float32)
            ids = np.empty((1, k), dtype=np.int64)
            only = faiss.IDSelectorBitmap(row_lists.size, faiss.swig_ptr(bits))
            sp = faiss.SearchParametersIVF(sel=only, nprobe=max(1, len(lists)))
            walk, ptr = faiss.extract_index_ivf(self.index), faiss.swig_ptr
            lists, centroid = np.ascontiguousarray(lists[None, :]), np.ascontiguousarray(scores[lists][None, :])
            walk.search_preassigned_c(1, ptr(x), k, ptr(lists), ptr(centroid), ptr(found), ptr(ids), False, sp)
        hit = ids[0] >= 0
        return ids[0][hit], found[0][hit]

    def _fast_scan(self, params: AnnParams) -> FastScanLists | None:
        """The fast-scan codes of a large IVF index, or None (a small index, none built yet: their
        build is then asked for, or codes FAISS cannot decode here)."""
        if not params.fast_scan_above or self.ntotal < params.fast_scan_above:
            return None
        generation, entry = self._generation, self._fast
        if entry is not None and entry[0] == generation:
            return entry[1]
        if params.partition_background:
            self._build_later(("fast-scan",), lambda: self._built_fast(generation))
            return None
        return self._built_fast(generation)

    def _built_fast(self, generation: int) -> FastScanLists | None:
        """The fast-scan codes as of ``generation``, unless another search made them meanwhile; kept
        only if no write came in between (read under the write lock, as :meth:`_built`). Codes of
        fewer rows, extended by the rows added since (:func:`recsys.store.fastscan.extend`): a copy
        of those a write dropped (searches may still read them), else those saved beside the file
        this index was read from or saved to; else they are built. Codes of an index that is its
        saved file are saved beside it."""
        import faiss

        with self._write_lock:
            entry = self._fast
            if entry is not None and entry[0] == generation:
                return entry[1]
            fast, centroids = None, self._centroids()
            if self._generation == generation and centroids is not None:
                try:
                    fast = self._fast_codes(faiss.extract_index_ivf(self.index), centroids, generation)
                except Exception:  # noqa: BLE001 (searches go on with the index's own codes)
                    logging.getLogger(__name__).exception("making the fast-scan codes of an index failed")
            with self._partition_lock:
                if self._generation == generation:
                    self._fast, self._fast_before = (generation, fast), None
            return fast

    def _fast_codes(self, whole, centroids: np.ndarray, generation: int) -> FastScanLists | None:  # noqa: ANN001
        """:meth:`_built_fast`'s codes of the IVF index ``whole`` (under the write lock)."""
        saved, fast = self._file, None
        if self._fast_before is not None:
            fast = _extended(fastscan.copy(self._fast_before), whole, centroids)
        from_file = fast is None and saved is not None
        if from_file:
            fast = _from_file(saved[1], whole, centroids)
        if fast is None:
            from_file = False
            fast = fastscan.build(whole, centroids, self._lists_of_rows())
        if fast is not None and not from_file and saved is not None and saved[0] == generation:
            fastscan.save(fast, saved[1])
        return fast

    def _reduce(self, query: np.ndarray) -> np.ndarray:
        """The query as the IVF lists see it: its principal components for a reduced index."""
        if not self.reduced:
            return query
        if self._projection is None:
            import faiss

            transform = faiss.downcast_VectorTransform(faiss.downcast_index(self.index).chain.at(0))
            matrix = faiss.vector_to_array(transform.A).reshape(transform.d_out, transform.d_in)
            self._projection = np.ascontiguousarray(matrix, dtype=np.float32)
        return self._projection @ np.asarray(query, dtype=np.float32)

    def probe_lists(
        self,
        x: np.ndarray,
        allowed: Selection,
        params: AnnParams,
        breadth: int = 1,
        part: CategoryLists | None = None,
        only_allowed: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The IVF lists to scan for query ``x`` (1, d) under ``allowed``, nearest first, with their
        centroid scores: the fewest (at least nprobe) whose qualifying rows reach the target, less
        those holding none. ``part``: a category's own lists to plan over instead of the index's
        (``only_allowed``: every row on them qualifies), scanned as ``partition_scan`` says."""
        import faiss

        scan = params.filter_scan if part is None else params.partition_scan
        if part is None:
            nlist = faiss.extract_index_ivf(self.index).nlist
            counts = allowed.memo(("ivf-lists", id(self), self._generation), lambda: self._list_counts(allowed.mask))
            centroids = self._centroids()
        else:
            nlist, centroids = part.nlist, part.centroids
            key = ("own-lists", id(self), self._generation, allowed.partition[0])
            counts = part.sizes if only_allowed else allowed.memo(key, lambda: part.counts(allowed.mask))
        qualifying = int(counts.sum())
        # As many qualifying vectors as an unfiltered search scans in a catalogue of just those
        # items: the filter's rows, probed nearest first, act as that catalogue's lists.
        target = scan * params.nprobe * breadth * qualifying / params.nlist_for(qualifying)
        need = min(target, qualifying)
        if centroids is None:  # a quantizer that is not a flat index: ask it to rank every list
            found, ranked = faiss.extract_index_ivf(self.index).quantizer.search(x, nlist)
            scores, order = np.empty(nlist, dtype=np.float32), ranked[0]
            scores[order] = found[0]
            reach = np.cumsum(counts[order])
        else:
            scores = centroids @ x[0]  # every list, by inner product (the index's metric)
            order, reach = _nearest_until(scores, counts, need, max(4 * params.nprobe * breadth, 256))
        nprobe = int(min(len(order), max(params.nprobe, np.searchsorted(reach, min(need, reach[-1])) + 1)))
        chosen = order[:nprobe]
        # A list without a qualifying row adds nothing but the walk over its rows (a tenth of the
        # lists probed at 1M items under a 3% category).
        chosen = chosen[counts[chosen] > 0] if qualifying else chosen[:1]
        lists = chosen[None, :].astype(np.int64)
        return np.ascontiguousarray(lists), np.ascontiguousarray(scores[lists], dtype=np.float32)

    def _category_lists(self, allowed: Selection, params: AnnParams) -> tuple[CategoryLists | None, bool]:
        """The own lists of the top-level category of ``allowed``, or None when it has none (no
        category, one too broad, or its lists not built yet: their build is then asked for); and
        whether those lists hold allowed rows only (the whole category, nothing excluded or deleted
        since they were built), so the search needs no filter: FAISS then tests no row against the
        bitmap (a virtual call per row walked)."""
        if allowed.partition is None or not params.partition_share:
            return None, False
        key, members = allowed.partition
        generation = self._generation
        entry = self._partitions.get(key)
        if entry is None or entry[0] != generation:
            if params.partition_background:
                self._build_later(("category", key), lambda: self._built(key, members, params, generation))
                return None, False
            entry = self._built(key, members, params, generation)
        _, part, built_from = entry
        if part is None:
            return None, False
        return part, allowed.same_rows(built_from)

    def _built(
        self, key: str, members: np.ndarray, params: AnnParams, generation: int
    ) -> tuple[int, CategoryLists | None, np.ndarray]:
        """The entry of category ``key`` (its rows ``members``) as of ``generation``, built unless
        another search built it meanwhile; kept only if no write came in between. The lists are read
        under the write lock (FAISS grows them in place on an add). A build that fails is logged and
        leaves no lists: the category's searches walk the shared ones until the next write."""
        with self._write_lock:
            entry = self._partitions.get(key)
            if entry is not None and entry[0] == generation:
                return entry
            part = None
            if self._generation == generation:
                try:
                    part = self._partition(key, members, params, generation)
                except Exception:  # noqa: BLE001 (the search goes on over the shared lists)
                    logging.getLogger(__name__).exception("building the IVF lists of category %r failed", key)
            entry = (generation, part, members if part is None else part.built_from(members))
            with self._partition_lock:
                if self._generation == generation:
                    self._partitions[key] = entry
                    self._partitions_before.pop(key, None)
            return entry

    def _build_later(self, key: tuple[str, ...], build_it: Callable[[], object]) -> None:
        """Have the background thread run ``build_it`` (:meth:`_built`, :meth:`_built_fast`), unless
        it is at the build ``key`` names already."""
        with self._partition_lock:
            if key in self._building:
                return
            self._building.add(key)

        def build() -> None:
            try:
                with _one_thread():  # as a build inside a search: one core, the other's searches go on
                    build_it()
            finally:
                with self._partition_lock:
                    self._building.discard(key)

        _BACKGROUND.submit(build)

    def _partition(self, key: str, members: np.ndarray, params: AnnParams, generation: int) -> CategoryLists | None:
        """Own lists for category ``key``'s ``members`` rows (see :mod:`recsys.store.partition`), or
        None when they are more than ``params.partition_share`` of the index (its own lists would
        barely be fewer). Lists of fewer rows, extended by the category's rows they lack
        (:func:`recsys.store.partition.extend`): a copy of those a write dropped, else those saved
        beside the file this index was read from or saved to; else they are built (at 1M items
        ~0.6 s a category and field). Lists of an index that is its saved file are saved beside it."""
        import faiss

        row_lists = self._lists_of_rows()
        rows = np.flatnonzero(members[: row_lists.size])
        rows = rows[row_lists[rows] >= 0]
        centroids = self._centroids()
        if rows.size > params.partition_share * max(1, self.ntotal) or centroids is None:
            return None
        whole = faiss.extract_index_ivf(self.index)
        saved, before = self._file, self._partitions_before.get(key)
        part = partition.copy(before) if before is not None else None  # searches may still read ``before``
        from_file = part is None and saved is not None
        if from_file:
            part = partition.load(saved[1], key, whole, rows)
        if part is not None:
            part = partition.extend(part, whole, centroids, row_lists, rows)
        if part is None:
            from_file = False
            part = partition.build(whole, centroids, row_lists, rows, params.nlist_for(int(rows.size)))
        if part is not None and not from_file and saved is not None and saved[0] == generation:
            partition.save(part, saved[1], key)
        return part

    def _centroids(self) -> np.ndarray | None:
        """The IVF centroids as one array: ranking all lists with one matrix-vector product and a
        sort took half the time of the quantizer's own top-nlist search (1280-d, 3.6k lists)."""
        if self._centroid_matrix is None:
            import faiss

            ivf = faiss.extract_index_ivf(self.index)
            quantizer = faiss.downcast_index(ivf.quantizer)
            if not isinstance(quantizer, faiss.IndexFlat):
                return None
            flat = faiss.rev_swig_ptr(quantizer.get_xb(), ivf.nlist * ivf.d)
            self._centroid_matrix = flat.reshape(ivf.nlist, ivf.d).copy()
        return self._centroid_matrix

    def _list_counts(self, mask: np.ndarray) -> np.ndarray:
        """Qualifying rows per IVF list (``mask`` over rows)."""
        import faiss

        row_lists = self._lists_of_rows()
        lists = row_lists[np.flatnonzero(mask[: row_lists.size])]
        return np.bincount(lists[lists >= 0], minlength=faiss.extract_index_ivf(self.index).nlist)

    def _lists_of_rows(self) -> np.ndarray:
        """Which IVF list holds each row, read from the inverted lists (once per write)."""
        if self._row_lists is None:
            import faiss

            ivf = faiss.extract_index_ivf(self.index)
            invlists = ivf.invlists
            parts = []
            for number in range(ivf.nlist):
                size = invlists.list_size(number)
                if size:
                    ids = faiss.rev_swig_ptr(invlists.get_ids(number), size).copy()
                    parts.append((number, ids))
            top = max((int(ids.max()) for _, ids in parts), default=-1)
            out = np.full(top + 1, -1, dtype=np.int32)
            for number, ids in parts:
                out[ids] = number
            self._row_lists = out
        return self._row_lists

    def at_limit(self, selectivity: float, params: AnnParams, breadth: int) -> bool:
        """Whether widening the search further changes nothing (the caller then goes exact)."""
        if self.exact:
            return True
        widen = breadth / max(selectivity, 1e-6) ** params.filter_widening
        if self.ivf:
            import faiss

            nlist = faiss.extract_index_ivf(self.index).nlist
            if params.filter_probing == "lists" and selectivity < 1:  # every list holding a qualifying row
                return params.filter_scan * params.nprobe * breadth >= selectivity * nlist
            return params.nprobe * widen >= nlist
        return params.ef_search * widen >= params.max_ef

    def save(self, path: str | os.PathLike[str]) -> int:
        """Write the index atomically, and beside it its fast-scan codes: those it has, else those
        saved beside the file it was read from or last saved to, extended by the rows added since
        (an indexing run never searches, yet the server it feeds then reads the codes instead of
        building them); the categories' lists saved beside that file are linked beside this one (a
        reader extends them). Returns the file's CRC-32, which :meth:`load` checks."""
        import faiss

        crc = 0

        def write(tmp: Path) -> None:
            nonlocal crc
            faiss.write_index(self.index, str(tmp))
            crc = file_crc32(tmp)

        write_with(path, write)
        before, self._file = self._file, (self._generation, Path(path))
        entry = self._fast
        fast = entry[1] if entry is not None and entry[0] == self._generation else None
        if fast is None and before is not None and self.ivf:
            fast = self._carried(before[1])
        if fast is not None:
            fastscan.save(fast, Path(path))
        if before is not None and self.ivf:
            partition.carry(before[1], Path(path))
        return crc

    def _carried(self, earlier: Path) -> FastScanLists | None:
        """The fast-scan codes saved beside ``earlier``, a file this index was, extended to its rows
        now; None when there are none (the next search of a large index builds its own)."""
        import faiss

        with self._write_lock:
            centroids = self._centroids()
            return None if centroids is None else _from_file(earlier, faiss.extract_index_ivf(self.index), centroids)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], spec: str, dim: int, max_rows: int, crc: int | None, *, mapped: bool = True
    ) -> FieldIndex:
        """A saved index, checked to be the file that was saved (``crc``; None for indexes saved before
        checksums) and the kind ``spec`` names over ``dim``-d vectors holding at most ``max_rows`` rows;
        ``ValueError`` (or faiss's ``RuntimeError``) when it is not.

        With ``mapped`` (where FAISS can: POSIX systems) the index's codes and ids stay in the file,
        mapped into memory (``IO_FLAG_MMAP_IFC``), rather than read into memory of the process's own:
        at 1M items reading the four fields' 1.6 GB of index took ~3.5 s of every start and as much
        RAM in each process, where the mapped pages are the OS's page cache, shared between processes
        (the app, CLI queries) and read on first use. The file is never written in place (a store
        writes a new index file and renames it), so the mapping stays valid while it is in use; the
        first rows added afterwards make the index a copy of its own (:meth:`add`)."""
        import faiss

        problem = file_problem(path)
        if problem is not None:
            raise ValueError(f"it {problem}")
        if crc is not None and file_crc32(path) != crc:
            raise ValueError("its checksum does not match the one saved with it")
        flag = _map_flag() if mapped else 0
        index = faiss.read_index(str(path), flag)
        template = faiss.index_factory(dim, "IDMap,Flat" if spec == "flat" else spec, faiss.METRIC_INNER_PRODUCT)
        kind, expected = type(faiss.downcast_index(index)), type(faiss.downcast_index(template))
        if spec.startswith("PCA"):  # the lists' own kind and dimensions, inside the projection
            inner, outer = faiss.extract_index_ivf(index), faiss.extract_index_ivf(template)
            if type(faiss.downcast_index(inner)) is not type(faiss.downcast_index(outer)) or inner.d != outer.d:
                raise ValueError(f"its lists are not the {spec} the store describes")
        if kind is not expected or index.d != dim or index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise ValueError(f"a {kind.__name__} over {index.d}-d vectors, expected {expected.__name__} over {dim}-d")
        if index.ntotal > max_rows:
            raise ValueError(f"{index.ntotal} rows, but the store had {max_rows} when it was saved")
        loaded = cls(index, spec)
        loaded.mapped = flag != 0
        loaded._file = (loaded._generation, Path(path))
        return loaded


def _from_file(index_file: Path, whole, centroids: np.ndarray) -> FastScanLists | None:  # noqa: ANN001
    """The fast-scan codes saved beside ``index_file`` (a file the IVF index ``whole`` was), extended to
    its rows now; None when there are none, or they do not fit."""
    fast = fastscan.load(index_file, whole)
    return None if fast is None else _extended(fast, whole, centroids)


def _extended(fast: FastScanLists, whole, centroids: np.ndarray) -> FastScanLists | None:  # noqa: ANN001
    """``fast`` extended by the rows ``whole`` gained since it was made; None (reported) when they
    are not codes of an earlier state of ``whole`` (damaged, or a file replaced in place)."""
    try:
        fastscan.extend(fast, whole, centroids)
    except ValueError as exc:
        logging.getLogger(__name__).warning("building the fast-scan codes again: %s", exc)
        return None
    return fast


def _map_flag() -> int:
    """FAISS's flag for reading an index with its codes mapped from the file, or 0 where it has none."""
    import faiss

    return int(getattr(faiss, "IO_FLAG_MMAP_IFC", 0)) if os.name == "posix" else 0


def _projection(sample: np.ndarray, dims: int):  # noqa: ANN202 (a faiss LinearTransform)
    """``x -> components.T x``: the sample's first ``dims`` principal components (of the centred
    sample, as the ranking depends on the variation between items) applied to uncentred vectors, so
    inner products stay inner products less what lies outside the components (as the joint field's
    projection, :mod:`recsys.store.joint`)."""
    import faiss

    x = np.asarray(sample, dtype=np.float32)
    x = x[:: max(1, len(x) // FIT_ROWS)]
    centred = x - x.mean(axis=0)
    cov = (centred.T @ centred).astype(np.float64) / max(1, len(x) - 1)
    values, vectors = np.linalg.eigh(cov)
    top = vectors[:, np.argsort(values)[::-1][:dims]].T  # (dims, d), orthonormal rows
    transform = faiss.LinearTransform(x.shape[1], dims, False)
    faiss.copy_array_to_vector(np.ascontiguousarray(top, dtype=np.float32).ravel(), transform.A)
    transform.is_trained = True
    return transform


class _Background:
    """One daemon thread running category-list builds one after another: a build takes a core for
    a fraction of a second, and searches go on meanwhile on the other. A daemon, unlike an
    executor's workers, lets a process (a CLI query) exit without first building what it asked for."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._pending = 0
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, job: Callable[[], None]) -> None:
        with self._changed:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="category-lists", daemon=True)
                self._thread.start()
        self._jobs.put(job)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            finally:
                with self._changed:
                    self._pending -= 1
                    self._changed.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._pending == 0, timeout)


_BACKGROUND = _Background()


def wait_for_category_lists(timeout: float | None = None) -> bool:
    """Wait until every category-list build asked for so far has ended (False: ``timeout`` seconds
    passed first): a benchmark times searches over built lists, a test checks what they find."""
    return _BACKGROUND.wait(timeout)


def _nearest_until(scores: np.ndarray, counts: np.ndarray, need: float, first: int) -> tuple[np.ndarray, np.ndarray]:
    """Lists by score, best first, and their running count of rows: only as many lists as it takes
    to reach ``need`` rows (ordering all 3.6k lists per probe was a fifth of a 1M-item search)."""
    take = min(len(scores), first)
    while True:
        if take >= len(scores):
            order = np.argsort(-scores, kind="stable")
        else:
            part = np.argpartition(-scores, take - 1)[:take]
            order = part[np.argsort(-scores[part], kind="stable")]
        reach = np.cumsum(counts[order])
        if reach[-1] >= need or take >= len(scores):
            return order, reach
        take *= 4


class _one_thread:
    """One query gains nothing from OpenMP threads, and on a busy machine they wait on each other
    (measured on 2 busy cores: a 10k x 384 flat search, p50 0.6 ms on 1 thread, 1-46 ms on 2)."""

    def __enter__(self) -> None:
        import faiss

        self._threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        import faiss

        faiss.omp_set_num_threads(self._threads)
