"""Persistent collections: SQLite documents + FAISS vectors + (text) BM25, in a folder per collection.

    from vltools.store import create_collection, open_collection
    coll = create_collection("docs", "text", model="minilm", settings=settings)
    coll.add([{"id": "1", "text": "..."}], vectors)      # atomic, cross-process locked
    coll.search(vector, k=10); coll.bm25_search("query", k=10)

Importing this package loads neither faiss nor bm25s (they load on first use).
"""

from vltools.store._db import index_text
from vltools.store._repair import repair_collection
from vltools.store.collection import (
    Collection,
    create_collection,
    delete_collection,
    list_collections,
    open_collection,
)

__all__ = [
    "Collection",
    "create_collection",
    "delete_collection",
    "index_text",
    "list_collections",
    "open_collection",
    "repair_collection",
]
