"""Object storage for squall's data plane: the `ObjectStore` protocol, its adapters, and the
layout of squall's own bucket. It lives under `events/` because the worker (writing) and the
services (reading) both use it, and neither may import the other.

    from events.objectstore import InMemoryObjectStore, ObjectStore, parse_gs_url
    from events.objectstore.gcs import GcsObjectStore   # imports google-cloud-storage (~0.3 s)

`GcsObjectStore` (google-cloud-storage) is the production adapter, for real GCS and for the
embedded GCS-API server alike; `InMemoryObjectStore` is for unit tests. Both pass
tests/contract/test_object_store.py.
"""

from __future__ import annotations

from events.objectstore.errors import (
    AccessDenied,
    InvalidObjectName,
    ObjectNotFound,
    ObjectStoreError,
    StoreUnavailable,
)
from events.objectstore.memory import InMemoryObjectStore
from events.objectstore.names import GsUrl, check_bucket_name, check_object_name, is_gs_url, parse_gs_url
from events.objectstore.protocol import ObjectInfo, ObjectStore

__all__ = [
    "AccessDenied", "GsUrl", "InMemoryObjectStore", "InvalidObjectName", "ObjectInfo",
    "ObjectNotFound", "ObjectStore", "ObjectStoreError", "StoreUnavailable", "check_bucket_name",
    "check_object_name", "is_gs_url", "parse_gs_url",
]

