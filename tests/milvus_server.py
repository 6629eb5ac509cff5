"""The Milvus server that tests may use, and the marks of the tests that need one.

A server is used when one answers at ``RECSYS_TEST_MILVUS_URI`` (default
``http://127.0.0.1:19530``). ``bash scripts/test.sh`` (and so CI) runs these tests against a
private server that only they can reach: ``bash scripts/milvus_server.sh run pytest -m
milvus_server``. Every test names its collections ``recsys_test_<random>`` and drops them.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest

MILVUS_URI = os.environ.get("RECSYS_TEST_MILVUS_URI", "http://127.0.0.1:19530")


def answers(uri: str) -> bool:
    parts = urlsplit(uri)
    try:
        with socket.create_connection((parts.hostname, parts.port or 19530), timeout=0.5):
            return True
    except OSError:
        return False


#: Marks of a test that needs the server: selectable with ``-m milvus_server``, skipped without one.
NEEDS_SERVER = [
    pytest.mark.milvus_server,
    pytest.mark.skipif(
        not answers(MILVUS_URI),
        reason=f"no Milvus server answers at {MILVUS_URI} "
        "(bash scripts/milvus_server.sh run pytest -m milvus_server starts a private one)",
    ),
]


def new_collection() -> str:
    return f"recsys_test_{uuid.uuid4().hex[:12]}"


def drop_collections(prefix: str) -> None:
    """Drop every collection of the test server whose name starts with ``prefix`` (a store's
    item table and field collections), whatever state the test left them in."""
    from pymilvus import MilvusClient

    client = MilvusClient(MILVUS_URI)
    try:
        for name in client.list_collections():
            if name.startswith(prefix):
                client.drop_collection(name)
    finally:
        client.close()
