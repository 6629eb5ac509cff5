"""The distributed backend: one Milvus collection per store, through pymilvus ``MilvusClient``.

The same class serves Milvus Lite (a local ``.db`` file, for tests and laptops) and a Milvus
server or cluster (``http://HOST:19530``), so the code users run at scale is the code the tests
run. Schema: VARCHAR primary key ``id``, VARCHAR ``version``, ARRAY<VARCHAR> ``cat_prefixes``
(every prefix of the category path, so a category filter is one ``array_contains``), and per
field a FLOAT_VECTOR ``v_<hex of the field name>`` (HNSW, inner product) with a BOOL
``h_<hex>`` that keeps items lacking the field out of its searches. Field names such as
``image@shared`` are not valid Milvus names, and Milvus Lite does not keep collection or field
descriptions, so the hex spelling is how the store reads its fields back from the schema.
Filters are expression strings with every id and category quoted by :func:`quote`
(pymilvus' own ``get``/``delete`` by ids do not escape backslashes, so they are not used).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recsys.errors import InputError, RecsysError
from recsys.store.base import (
    MAX_CATEGORY_DEPTH,
    MAX_CATEGORY_LENGTH,
    MAX_ID_LENGTH,
    MAX_VERSION_LENGTH,
    Hits,
    VectorStore,
    category_prefixes,
    check_fields,
    check_ids,
    normalize_category,
)

MAX_TOPK = 16_384  # Milvus' limit on results per search


def quote(text: str) -> str:
    """A Milvus expression string literal for ``text`` (backslashes, quotes and line breaks escaped)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + escaped.replace("\t", "\\t") + '"'


def vector_column(field: str) -> str:
    return "v_" + field.encode().hex()


def has_column(field: str) -> str:
    return "h_" + field.encode().hex()


def id_list(ids: Sequence[str]) -> str:
    return "[" + ", ".join(quote(i) for i in ids) + "]"


class MilvusStore(VectorStore):
    """``milvus-lite://PATH.db``, a path ending ``.db``, or ``http(s)://HOST:PORT`` / ``milvus://HOST:PORT``."""

    def __init__(
        self,
        uri: str,
        fields: Mapping[str, int] | None = None,
        *,
        collection: str = "recsys",
        token: str = "",
        hnsw_m: int = 16,
        ef_construction: int = 128,
        ef_search: int = 64,
        batch_size: int = 512,
        timeout: float = 30.0,
    ) -> None:
        from pymilvus import MilvusClient

        self.uri, self.collection = uri, collection
        self.ef_search, self.batch_size = ef_search, batch_size
        if not uri.startswith(("http://", "https://")):
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._client = MilvusClient(uri, token=token, timeout=timeout)
        except Exception as e:  # pymilvus raises several unrelated types for "nothing listens there"
            raise RecsysError(f"cannot connect to Milvus at {uri}: {e}") from None
        if self._client.has_collection(collection):
            self.fields = self._stored_fields()
            if fields is not None and check_fields(fields) != self.fields:
                raise RecsysError(
                    f"the Milvus collection '{collection}' at {uri} has fields {self.fields}, not {dict(fields)}; "
                    "open it with its own fields or use another ?collection=NAME"
                )
            self._client.load_collection(collection)
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
        zeros = {f: np.zeros(d, dtype=np.float32) for f, d in self.fields.items()}
        for a in range(0, len(batch.ids), self.batch_size):
            rows = []
            for r in range(a, min(len(batch.ids), a + self.batch_size)):
                row: dict[str, Any] = {
                    "id": batch.ids[r],
                    "version": batch.versions[r],
                    "cat_prefixes": category_prefixes(batch.categories[r]),
                }
                for f in self.fields:
                    has = bool(batch.has[f][r])
                    row[vector_column(f)] = (batch.vectors[f][r] if has else zeros[f]).tolist()
                    row[has_column(f)] = has
                rows.append(row)
            self._client.upsert(self.collection, rows)

    def delete(self, ids: Sequence[str]) -> None:
        ids = [ids] if isinstance(ids, str) else [i for i in ids if isinstance(i, str)]
        for a in range(0, len(ids), self.batch_size):
            self._client.delete(self.collection, filter=f"id in {id_list(ids[a : a + self.batch_size])}")

    def flush(self) -> None:
        self._client.flush(self.collection)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ------------------------------------------------------------------------ reads

    def search(
        self,
        field: str,
        query: np.ndarray,
        k: int,
        *,
        category: str | None = None,
        exclude: Collection[str] = (),
    ) -> Hits:
        q = self._check_query(field, query, k)
        if k > MAX_TOPK:
            raise InputError(f"a Milvus store returns at most {MAX_TOPK} results per search, not {k}")
        expr = [f"{has_column(field)} == true"]
        if category is not None:
            expr.append(f"array_contains(cat_prefixes, {quote(normalize_category(category))})")
        if exclude:
            expr.append(f"id not in {id_list([e for e in exclude if isinstance(e, str)])}")
        result = self._client.search(
            self.collection,
            data=[q.tolist()],
            anns_field=vector_column(field),
            limit=k,
            filter=" and ".join(expr),
            search_params={"metric_type": "IP", "params": {"ef": max(self.ef_search, k)}},
            output_fields=["id"],
        )
        hits = list(result[0])
        return Hits([h["id"] for h in hits], np.array([h["distance"] for h in hits], dtype=np.float32))

    def get(self, field: str, ids: Sequence[str]) -> np.ndarray:
        self._dim(field)
        column = vector_column(field)
        wanted = check_ids(ids, what="get")
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(wanted))
        for a in range(0, len(unique), self.batch_size):
            part = unique[a : a + self.batch_size]
            for row in self._client.query(
                self.collection, filter=f"id in {id_list(part)}", output_fields=["id", column]
            ):
                found[row["id"]] = np.asarray(row[column], dtype=np.float32)
        missing = [i for i in wanted if i not in found]
        if missing:
            shown = ", ".join(f"'{i}'" for i in missing[:5])
            raise InputError(f"unknown item id{'s' if len(missing) > 1 else ''} {shown}")
        return np.stack([found[i] for i in wanted]).reshape(len(wanted), self.fields[field])

    def versions(self) -> dict[str, str]:
        """All id -> version, paged by primary key (Milvus returns query results in key order)."""
        out: dict[str, str] = {}
        last = None
        while True:
            expr = 'id > ""' if last is None else f"id > {quote(last)}"
            page = self._client.query(
                self.collection, filter=expr, output_fields=["id", "version"], limit=self.batch_size * 8
            )
            if not page:
                return out
            for row in page:
                out[row["id"]] = row["version"]
            last = max(row["id"] for row in page)

    def __len__(self) -> int:
        rows = self._client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    # ------------------------------------------------------------------------ schema

    def _create(self, hnsw_m: int, ef_construction: int) -> None:
        from pymilvus import DataType

        c = self._client
        schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=4 * MAX_ID_LENGTH)
        schema.add_field("version", DataType.VARCHAR, max_length=4 * MAX_VERSION_LENGTH)
        schema.add_field(
            "cat_prefixes",
            DataType.ARRAY,
            element_type=DataType.VARCHAR,
            max_capacity=MAX_CATEGORY_DEPTH,
            max_length=4 * MAX_CATEGORY_LENGTH,
        )
        index_params = c.prepare_index_params()
        for field, dim in self.fields.items():
            schema.add_field(vector_column(field), DataType.FLOAT_VECTOR, dim=dim)
            schema.add_field(has_column(field), DataType.BOOL)
            index_params.add_index(
                field_name=vector_column(field),
                index_type="HNSW",
                metric_type="IP",
                params={"M": hnsw_m, "efConstruction": ef_construction},
            )
        try:
            c.create_collection(self.collection, schema=schema, index_params=index_params, consistency_level="Strong")
        except Exception as e:
            if "multiple vector fields is not supported" in str(e):
                raise RecsysError(
                    f"the Milvus server at {self.uri} is older than 2.4 and allows one vector field per "
                    f"collection, but this store has {len(self.fields)}; use Milvus 2.4 or later"
                ) from None
            raise

    def _stored_fields(self) -> dict[str, int]:
        columns = self._client.describe_collection(self.collection).get("fields", [])
        names = {c["name"] for c in columns}
        fields = {}
        try:
            for c in columns:
                if c["name"].startswith("v_"):
                    fields[bytes.fromhex(c["name"][2:]).decode()] = int(c["params"]["dim"])
        except (ValueError, KeyError, TypeError):
            fields = {}
        if not fields or not {"id", "version", "cat_prefixes"} <= names:
            raise RecsysError(
                f"the Milvus collection '{self.collection}' at {self.uri} was not created by recsys; "
                "use another ?collection=NAME"
            )
        return fields
