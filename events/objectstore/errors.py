"""The object store's error tree: what a caller can act on, whatever the adapter underneath.

    ObjectStoreError
    ├── ObjectNotFound     the object (or its bucket) does not exist: the caller's mistake, never retried
    ├── AccessDenied       the credentials may not do this (401/403): fix the grant or the key
    ├── InvalidObjectName  a bucket or object name the store cannot hold
    └── StoreUnavailable   unreachable, timed out, 429 or 5xx: the system's trouble, worth retrying later

Adapters map their library's errors into this tree with `raise ... from exc`, so the original
is kept for the logs while callers branch on these four.
"""

from __future__ import annotations


class ObjectStoreError(Exception):
    """An object-store operation failed; the message names the bucket and object."""


class ObjectNotFound(ObjectStoreError):
    """No such object, or no such bucket."""


class AccessDenied(ObjectStoreError):
    """The store refused these credentials for this bucket or object."""


class InvalidObjectName(ObjectStoreError, ValueError):
    """The bucket or object name cannot be used (empty, too long, not a valid bucket name)."""


class StoreUnavailable(ObjectStoreError):
    """The store could not be reached or answered 429/5xx after the adapter's own retries."""
