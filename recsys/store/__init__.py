"""Vector stores: one interface (:class:`VectorStore`), backends chosen by a URI.

- a folder path or ``local://DIR``: the embedded default (:mod:`recsys.store.local`), no service;
- ``milvus-lite://PATH.db`` or a path ending ``.db``: Milvus Lite (:mod:`recsys.store.milvus`);
- ``http://HOST:PORT``, ``https://HOST:PORT``, ``milvus://HOST:PORT``: a Milvus server or cluster;
- ``memory://``: an exact store in RAM (tests, small demos).

Milvus URIs take ``?collection=NAME`` (default ``recsys``). Backends import lazily: opening a
local store never imports pymilvus.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs, urlsplit

from recsys.errors import RecsysError
from recsys.store.base import Hits, VectorStore

__all__ = ["Hits", "VectorStore", "open_store", "KNOWN_URIS"]

KNOWN_URIS = (
    "a folder path or local://DIR, milvus-lite://PATH.db (or a path ending .db), "
    "http://HOST:PORT, https://HOST:PORT, milvus://HOST:PORT, memory://"
)


def open_store(uri: str | os.PathLike[str], fields: dict[str, int] | None = None, **options: Any) -> VectorStore:
    """Open (or, given ``fields``, create) the store at ``uri``.

    ``fields`` maps field name -> dim; it is required to create a store and checked against an
    existing one (a mismatch raises :class:`RecsysError`). ``options`` go to the backend
    (e.g. ``exact_below=`` for the local store, ``token=`` for Milvus).
    """
    text = os.fspath(uri)
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower() if sep else ""
    if not sep:
        if _split_query(text)[0].endswith(".db"):
            return _milvus(text, fields, options)
        from recsys.store.local import LocalStore

        return LocalStore(text, fields, **options)
    if scheme == "local":
        from recsys.store.local import LocalStore

        return LocalStore(rest, fields, **options)
    if scheme == "memory":
        from recsys.store.memory import MemoryStore

        if options:
            raise RecsysError(f"memory:// takes no options, got {', '.join(options)}")
        if fields is None:
            raise RecsysError("memory:// starts empty; pass fields={name: dim}")
        return MemoryStore(fields)
    if scheme == "milvus-lite":
        return _milvus(rest, fields, options)
    if scheme in ("http", "https"):
        return _milvus(text, fields, options)
    if scheme == "milvus":
        return _milvus("http://" + rest, fields, options)
    raise RecsysError(f"unknown vector store URI '{text}'; use {KNOWN_URIS}")


def _split_query(text: str) -> tuple[str, dict[str, str]]:
    base, _, query = text.partition("?")
    return base, {k: v[-1] for k, v in parse_qs(query).items()}


def _milvus(target: str, fields: dict[str, int] | None, options: dict[str, Any]) -> VectorStore:
    from recsys.store.milvus import MilvusStore

    base, query = _split_query(target)
    unknown = set(query) - {"collection"}
    if unknown:
        raise RecsysError(f"unknown Milvus URI parameter(s) {', '.join(sorted(unknown))}; only ?collection=NAME")
    if base.startswith(("http://", "https://")):
        parts = urlsplit(base)
        if not parts.hostname:
            raise RecsysError(f"Milvus URI '{target}' has no host; use http://HOST:19530")
    return MilvusStore(base, fields, collection=query.get("collection", options.pop("collection", "recsys")), **options)
