"""The distributed backend: a store is a few Milvus collections, through pymilvus ``MilvusClient``.

The same class serves Milvus Lite (a local ``.db`` file, for tests and laptops), Milvus 2.3
servers (the one that installs from PyPI) and 2.4+ servers or clusters (``http://HOST:19530``),
with ONE layout for all, so the code users run at scale is the code the tests run. Milvus 2.3
allows one vector field per collection, hence one collection per field:

- ``<collection>``, the item table: VARCHAR primary key ``id``, VARCHAR ``version``, ARRAY<VARCHAR>
  ``cat_prefixes``, a BOOL ``f_<hex of the field name>`` per field (which fields the item has;
  also how the store reads its fields back), and a 2-d placeholder vector, since every Milvus
  collection needs one. Every item is here, also one without any vector.
- ``<collection>__<hex>`` per field: ``id``, ``cat_prefixes`` (every prefix of the category
  path, so a category filter is one ``array_contains`` inside the HNSW search) and ``vector``
  (HNSW, inner product). Items lacking the field are absent from it.

Writes go to the field collections first and to the item table last, deletes likewise: the item
table's version is what :func:`recsys.recommend.catalogue_store.sync_store` compares, so an interrupted
write is redone by the next sync. Field names such as ``image@shared`` are not valid Milvus
names, and Milvus Lite does not keep descriptions, hence the hex spelling. Filters are
expression strings with every id and category quoted by :func:`quote` (pymilvus' own
``get``/``delete`` by ids do not escape backslashes, so they are not used).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recsys.catalogue import MAX_ID_LENGTH
from recsys.catalogue.categories import MAX_CATEGORY_DEPTH, MAX_CATEGORY_LENGTH, category_prefixes, normalize_category
from recsys.errors import InputError, RecsysError
from recsys.ranking import top_k
from recsys.store.base import (
    MAX_VERSION_LENGTH,
    Hits,
    VectorStore,
    check_effort,
    check_fields,
    check_ids,
)

log = logging.getLogger(__name__)

MAX_TOPK = 16_384  # Milvus' limit on results per search
MAX_EF = 32_768  # Milvus' limit on HNSW's ef
SMALL_SEGMENT_ROWS = 1024  # Milvus builds no index for smaller segments (minSegmentNumRowsToEnableIndex)
PLACEHOLDER = "placeholder"  # the item table's vector column (Milvus requires one per collection)
PLACEHOLDER_DIM = 2
ID, VERSION, CATEGORIES, VECTOR = "id", "version", "cat_prefixes", "vector"


def quote(text: str) -> str:
    """A Milvus expression string literal for ``text`` (backslashes, quotes and line breaks escaped)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + escaped.replace("\t", "\\t") + '"'


def id_list(ids: Sequence[str]) -> str:
    return "[" + ", ".join(quote(i) for i in ids) + "]"


def field_hex(field: str) -> str:
    return field.encode().hex()


def flag_column(field: str) -> str:
    """The item table's BOOL column saying whether an item has ``field``."""
    return "f_" + field_hex(field)


def field_collection(collection: str, field: str) -> str:
    return f"{collection}__{field_hex(field)}"


class MilvusStore(VectorStore):
    """``milvus-lite://PATH.db``, a path ending ``.db``, or ``http(s)://HOST:PORT`` / ``milvus://HOST:PORT``.

    Options: ``hnsw_m`` / ``ef_construction`` (the HNSW index of a new store), ``ef_search``
    (HNSW's ef, at least k), ``exact_filter_below`` (a category filter leaving at most this many
    rows is scored exactly), ``batch_size`` (rows per write or read call), ``session_seconds``
    (how long after a write reads wait for it), ``index_wait`` (how long ``flush`` waits for a
    server's indexes), ``timeout`` (per call), ``token`` (a server's credentials).
    """

    def __init__(
        self,
        uri: str,
        fields: Mapping[str, int] | None = None,
        *,
        collection: str = "recsys",
        token: str = "",
        hnsw_m: int = 16,
        ef_construction: int = 128,
        ef_search: int = 512,
        exact_filter_below: int = 100,
        batch_size: int = 2048,
        timeout: float = 30.0,
        session_seconds: float = 10.0,
        index_wait: float = 300.0,
    ) -> None:
        from pymilvus import MilvusClient

        self.uri, self.collection = uri, collection
        self.ef_search, self.batch_size, self.timeout = ef_search, batch_size, timeout
        self.session_seconds, self._strong_until = session_seconds, 0.0
        self.exact_filter_below, self.index_wait = exact_filter_below, index_wait
        self._server = uri.startswith(("http://", "https://"))
        if not self._server:
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._client = MilvusClient(uri, token=token, timeout=timeout)
        except Exception as e:  # pymilvus raises several unrelated types for "nothing listens there"
            raise RecsysError(f"cannot connect to Milvus at {uri}: {e}") from None
        if self._client.has_collection(collection):
            self.fields = self._stored_fields()
            if fields is not None and check_fields(fields) != self.fields:
                raise RecsysError(
                    f"the Milvus store '{collection}' at {uri} has fields {self.fields}, not {dict(fields)}; "
                    "open it with its own fields or use another ?collection=NAME"
                )
            self._load()
        else:
            if fields is None:
                raise RecsysError(
                    f"there is no collection '{collection}' at {uri}; pass fields={{name: dim}} to create one"
                )
            self.fields = check_fields(fields)
            self._create(hnsw_m, ef_construction)

    # ------------------------------------------------------------------------ writes

    def upsert(
        self,
        ids: Sequence[str],
        categories: Sequence[str],
        vectors: Mapping[str, np.ndarray],
        versions: Sequence[str] | None = None,
    ) -> None:
        batch = self._check_batch(ids, categories, vectors, versions)
        for a in range(0, len(batch.ids), self.batch_size):
            part = slice(a, min(len(batch.ids), a + self.batch_size))
            ids_part = batch.ids[part]
            prefixes = [category_prefixes(c) for c in batch.categories[part]]
            for field in self.fields:
                has = batch.has[field][part]
                lacking = [i for i, h in zip(ids_part, has, strict=True) if not h]
                if lacking:  # a whole-item replace: drop what an earlier version had
                    self._client.delete(field_collection(self.collection, field), filter=f"{ID} in {id_list(lacking)}")
                rows = np.flatnonzero(has)
                if rows.size:
                    matrix = batch.vectors[field][a + rows].tolist()
                    self._client.upsert(
                        field_collection(self.collection, field),
                        [
                            {ID: ids_part[r], CATEGORIES: prefixes[r], VECTOR: v}
                            for r, v in zip(rows.tolist(), matrix, strict=True)
                        ],
                    )
            placeholder = [0.0] * PLACEHOLDER_DIM
            items = []
            for r, item_id in enumerate(ids_part):
                row: dict[str, Any] = {ID: item_id, VERSION: batch.versions[a + r], CATEGORIES: prefixes[r]}
                for field in self.fields:
                    row[flag_column(field)] = bool(batch.has[field][a + r])
                row[PLACEHOLDER] = placeholder
                items.append(row)
            self._client.upsert(self.collection, items)
            self._written()

    def delete(self, ids: Sequence[str]) -> None:
        ids = [ids] if isinstance(ids, str) else [i for i in ids if isinstance(i, str)]
        for a in range(0, len(ids), self.batch_size):
            expr = f"{ID} in {id_list(ids[a : a + self.batch_size])}"
            for name in [*self._field_collections(), self.collection]:  # the item table last
                self._client.delete(name, filter=expr)
            self._written()

    def flush(self) -> None:
        """Seal every collection's segments (so they are written to Milvus' object storage and
        indexed), then wait until a server searches them through their HNSW indexes: until then
        it answers from an interim index (IVF, recall@10 about 0.8 on the benchmark's data)."""
        for name in self._collections():
            self._client.flush(name)
        if self._server:
            self._wait_indexed()

    def _wait_indexed(self) -> None:
        deadline = time.monotonic() + self.index_wait
        pending = self._field_collections()
        while True:
            pending = [name for name in pending if not self._indexed(name)]
            if not pending:
                return
            if time.monotonic() > deadline:
                log.warning(
                    "Milvus at %s has not indexed %s after %.0f s; searches use its interim index until it has",
                    self.uri,
                    ", ".join(pending),
                    self.index_wait,
                )
                return
            time.sleep(0.5)

    def _indexed(self, name: str) -> bool:
        """Whether the server has built ``name``'s index and searches its flushed rows through it.

        Segments smaller than :data:`SMALL_SEGMENT_ROWS` get no index (they are scanned), and
        are not always reported as loaded, so up to that many rows may be left unaccounted for.
        """
        info = self._client.describe_index(name, VECTOR)
        total = int(info.get("total_rows", 0))
        if int(info.get("pending_index_rows", 0)) > 0 or int(info.get("indexed_rows", 0)) < total:
            return False
        served = sum(
            s.num_rows for s in self._client.list_loaded_segments(name) if s.index_id or s.num_rows < SMALL_SEGMENT_ROWS
        )
        return total - served < SMALL_SEGMENT_ROWS

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def drop(self) -> None:
        """Delete the store: its item table and every field collection (the item table first, so
        that an interrupted drop leaves no store that looks complete)."""
        for name in [self.collection, *self._field_collections()]:
            if self._client.has_collection(name):
                self._client.drop_collection(name)

    # ------------------------------------------------------------------------ reads

    def search(
        self,
        field: str,
        query: np.ndarray,
        k: int,
        *,
        category: str | None = None,
        exclude: Collection[str] = (),
        rescore: bool = True,
        effort: float = 1.0,
    ) -> Hits:
        q = self._check_query(field, query, k)
        if k > MAX_TOPK:
            raise InputError(f"a Milvus store returns at most {MAX_TOPK} results per search, not {k}")
        name = field_collection(self.collection, field)
        expr = []
        if category is not None:
            expr.append(f"array_contains({CATEGORIES}, {quote(normalize_category(category))})")
        excluded = [e for e in exclude if isinstance(e, str)]
        if excluded:
            expr.append(f"{ID} not in {id_list(excluded)}")
        where = " and ".join(expr)
        ef = max(int(round(self.ef_search * check_effort(effort))), k)
        if category is None:
            return self._ann(name, q, k, where, ef)
        # Under a filter that leaves few rows, HNSW (and Milvus' interim index) misses some of
        # them: measured on Milvus Lite and 2.3. So few rows are scored exactly, and a search
        # that found fewer rows than qualify is widened once. Counting the rows is a query of its
        # own that tests the filter on every row, so it waits until a search asking for at least
        # as many rows as are scored exactly comes back short: one that found all k had more, and
        # one that found every row the filter leaves needs no exact scoring of them (its scores
        # are the stored vectors' inner products).
        hits = self._ann(name, q, k, where, ef) if k >= self.exact_filter_below else None
        if hits is not None and len(hits) >= k:
            return hits
        qualifying = self._count(name, where)
        if hits is not None and len(hits) >= qualifying:
            return hits
        if qualifying <= self.exact_filter_below:
            return self._exact(name, q, k, where, qualifying)
        if hits is None:
            hits = self._ann(name, q, k, where, ef)
        if len(hits) < min(k, qualifying):
            hits = self._ann(name, q, k, where, min(MAX_EF, 8 * ef))
        return hits

    def _ann(self, name: str, q: np.ndarray, k: int, where: str, ef: int) -> Hits:
        result = self._client.search(
            name,
            data=[q.tolist()],
            anns_field=VECTOR,
            limit=k,
            filter=where,
            search_params={"metric_type": "IP", "params": {"ef": ef}},
            output_fields=[ID],
            consistency_level=self._consistency(),
        )
        hits = list(result[0])
        return Hits([h[ID] for h in hits], np.array([h["distance"] for h in hits], dtype=np.float32))

    def _count(self, name: str, where: str) -> int:
        rows = self._client.query(name, filter=where, output_fields=["count(*)"], consistency_level=self._consistency())
        return int(rows[0]["count(*)"])

    def _exact(self, name: str, q: np.ndarray, k: int, where: str, n: int) -> Hits:
        """Inner products with every row ``where`` selects (``n`` of them, few)."""
        if n == 0:
            return Hits([], np.empty(0, dtype=np.float32))
        rows = self._client.query(
            name, filter=where, output_fields=[ID, VECTOR], limit=n, consistency_level=self._consistency()
        )
        if not rows:
            return Hits([], np.empty(0, dtype=np.float32))
        scores = np.asarray([r[VECTOR] for r in rows], dtype=np.float32) @ q
        order = top_k(scores, k)
        return Hits([rows[i][ID] for i in order.tolist()], scores[order])

    def get(self, field: str, ids: Sequence[str]) -> np.ndarray:
        dim = self._dim(field)
        wanted = check_ids(ids, what="get")
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(wanted))
        for a in range(0, len(unique), self.batch_size):
            part = unique[a : a + self.batch_size]
            for row in self._client.query(
                field_collection(self.collection, field),
                filter=f"{ID} in {id_list(part)}",
                output_fields=[ID, VECTOR],
                consistency_level=self._consistency(),
            ):
                found[row[ID]] = np.asarray(row[VECTOR], dtype=np.float32)
            lacking = [i for i in part if i not in found]
            if lacking:  # known items without the field read as zero rows
                for row in self._client.query(
                    self.collection,
                    filter=f"{ID} in {id_list(lacking)}",
                    output_fields=[ID],
                    consistency_level=self._consistency(),
                ):
                    found[row[ID]] = np.zeros(dim, dtype=np.float32)
        missing = [i for i in wanted if i not in found]
        if missing:
            shown = ", ".join(f"'{i}'" for i in missing[:5])
            raise InputError(f"unknown item id{'s' if len(missing) > 1 else ''} {shown}")
        return np.stack([found[i] for i in wanted]).reshape(len(wanted), dim)

    def versions(self) -> dict[str, str]:
        """All id -> version, paged by primary key.

        A limited query returns the smallest keys past the last page only in iterator mode (the
        flags pymilvus' own ``query_iterator`` sets); a plain one returns any matching rows, which
        skipped items on Milvus Lite. pymilvus' iterator itself does not escape string keys.
        """
        out: dict[str, str] = {}
        last = None
        while True:
            expr = f'{ID} > ""' if last is None else f"{ID} > {quote(last)}"
            page = self._client.query(
                self.collection,
                filter=expr,
                output_fields=[ID, VERSION],
                limit=self.batch_size * 8,
                iterator="True",
                reduce_stop_for_best="True",
            )
            if not page:
                return out
            for row in page:
                out[row[ID]] = row[VERSION]
            last = max(row[ID] for row in page)

    def __len__(self) -> int:
        rows = self._client.query(
            self.collection, filter="", output_fields=["count(*)"], consistency_level=self._consistency()
        )
        return int(rows[0]["count(*)"])

    # ------------------------------------------------------------------------ schema

    def _load(self) -> None:
        """Load every collection of the store into the query nodes, all at once (a Milvus 2.3
        server takes seconds per collection), and wait until they are."""
        names = self._collections()
        for name in names:
            self._client.load_collection(name, _async=True)
        deadline = time.monotonic() + self.timeout
        while names:
            names = [n for n in names if getattr(self._client.get_load_state(n)["state"], "name", "") != "Loaded"]
            if names and time.monotonic() > deadline:
                raise RecsysError(f"Milvus at {self.uri} did not load {', '.join(names)} within {self.timeout:.0f} s")
            if names:
                time.sleep(0.05)

    def _written(self) -> None:
        """Reads in the next ``session_seconds`` are strong (they wait for this write); later ones
        bounded (up to the server's ``common.gracefulTime``, 5 s by default, stale), since a strong
        read waits for the server's next time tick, 200 ms on a 2.3 server, on every call."""
        self._strong_until = time.monotonic() + self.session_seconds

    def _consistency(self) -> str:
        return "Strong" if time.monotonic() < self._strong_until else "Bounded"

    def _field_collections(self) -> list[str]:
        return [field_collection(self.collection, f) for f in self.fields]

    def _collections(self) -> list[str]:
        return [self.collection, *self._field_collections()]

    def _create(self, hnsw_m: int, ef_construction: int) -> None:
        """The field collections first and the item table last: a store whose item table exists is complete."""
        from pymilvus import DataType

        c = self._client

        def base_schema() -> Any:
            schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field(ID, DataType.VARCHAR, is_primary=True, max_length=4 * MAX_ID_LENGTH)
            return schema

        def add_categories(schema: Any) -> None:
            schema.add_field(
                CATEGORIES,
                DataType.ARRAY,
                element_type=DataType.VARCHAR,
                max_capacity=MAX_CATEGORY_DEPTH,
                max_length=4 * MAX_CATEGORY_LENGTH,
            )

        for field, dim in self.fields.items():
            name = field_collection(self.collection, field)
            if c.has_collection(name):
                self._drop_leftover(name)
            schema = base_schema()
            add_categories(schema)
            schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dim)
            index = c.prepare_index_params()
            index.add_index(
                field_name=VECTOR,
                index_type="HNSW",
                metric_type="IP",
                params={"M": hnsw_m, "efConstruction": ef_construction},
            )
            c.create_collection(name, schema=schema, consistency_level="Strong")
            c.create_index(name, index)
        schema = base_schema()
        schema.add_field(VERSION, DataType.VARCHAR, max_length=4 * MAX_VERSION_LENGTH)
        add_categories(schema)
        for field in self.fields:
            schema.add_field(flag_column(field), DataType.BOOL)
        schema.add_field(PLACEHOLDER, DataType.FLOAT_VECTOR, dim=PLACEHOLDER_DIM)
        index = c.prepare_index_params()
        index.add_index(field_name=PLACEHOLDER, index_type="FLAT", metric_type="L2")
        c.create_collection(self.collection, schema=schema, consistency_level="Strong")
        c.create_index(self.collection, index)
        self._load()

    def _drop_leftover(self, name: str) -> None:
        """A field collection without its item table is left from an interrupted create (or drop): drop it,
        but only if it has exactly our columns, so that nobody else's collection is touched."""
        columns = {col["name"] for col in self._client.describe_collection(name).get("fields", [])}
        if columns != {ID, CATEGORIES, VECTOR}:
            raise RecsysError(
                f"the Milvus collection '{name}' at {self.uri} was not created by recsys but has the name this "
                f"store needs for a field; use another ?collection=NAME than '{self.collection}'"
            )
        self._client.drop_collection(name)

    def _stored_fields(self) -> dict[str, int]:
        columns = self._client.describe_collection(self.collection).get("fields", [])
        names = {col["name"] for col in columns}
        if any(n.startswith("v_") for n in names) and {"id", "version", "cat_prefixes"} <= names:
            raise RecsysError(
                f"the Milvus collection '{self.collection}' at {self.uri} has the layout of an older recsys "
                "(every field in one collection, which Milvus 2.3 cannot hold); rebuild it: drop it "
                f"(pymilvus: MilvusClient(uri).drop_collection('{self.collection}')) and index the catalogue "
                "again, or use another ?collection=NAME"
            )
        try:
            order = [bytes.fromhex(col["name"][2:]).decode() for col in columns if col["name"].startswith("f_")]
        except ValueError:  # also a name that is not UTF-8 once decoded
            order = []
        if not order or not {ID, VERSION, CATEGORIES, PLACEHOLDER} <= names:
            raise RecsysError(
                f"the Milvus collection '{self.collection}' at {self.uri} was not created by recsys; "
                "use another ?collection=NAME"
            )
        fields = {}
        for field in order:
            name = field_collection(self.collection, field)
            if not self._client.has_collection(name):
                raise RecsysError(
                    f"the Milvus store '{self.collection}' at {self.uri} lacks its collection '{name}' for "
                    f"field '{field}'; drop the store (MilvusStore.drop) and index the catalogue again"
                )
            dims = [
                int(col["params"]["dim"])
                for col in self._client.describe_collection(name).get("fields", [])
                if col["name"] == VECTOR
            ]
            if not dims:
                raise RecsysError(f"the Milvus collection '{name}' at {self.uri} was not created by recsys")
            fields[field] = dims[0]
        return fields
