"""The bytes of one snapshot: a checked header, then the fold's state as plain data.

    blob = seal(fingerprint, plain)        # plain: tuples, lists, dicts, sets, str, bytes, int, float, bool, None
    plain = unseal(fingerprint, blob)      # SnapshotOutdated / SnapshotCorrupt instead of a misread

Layout: b"SQSN", the 16-byte fingerprint of the writer's format, the body's length (8 bytes, big
endian) and its BLAKE2b-128 digest, then the body: zlib(pickle(plain)). Unpickling refuses every
global, so a snapshot can only ever hold plain data, whoever wrote the bytes.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import struct
import zlib
from typing import Any

MAGIC = b"SQSN"
_HEADER = struct.Struct(">4s16sQ16s")
HEADER_LEN = _HEADER.size


class SnapshotUnusable(Exception):
    """The snapshot cannot be used: the fold starts from the log instead."""


class SnapshotOutdated(SnapshotUnusable):
    """Written by another version of the fold (a different format): ignored, the fold refolds."""


class SnapshotCorrupt(SnapshotUnusable):
    """The bytes do not check out (truncated, altered, undecodable): ignored loudly, the fold refolds."""


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"a snapshot holds plain data only, not {module}.{name}")


def seal(fingerprint: bytes, plain: Any, level: int = 1) -> bytes:
    if len(fingerprint) != 16:
        raise ValueError("a fingerprint has 16 bytes")
    body = zlib.compress(pickle.dumps(plain, protocol=5), level)
    return _HEADER.pack(MAGIC, fingerprint, len(body), _digest(body)) + body


def fingerprint_of(blob: bytes) -> bytes | None:
    """The format a blob says it has (None if it has no snapshot header at all)."""
    if len(blob) < HEADER_LEN or blob[:4] != MAGIC:
        return None
    return bytes(blob[4:20])


def unseal(fingerprint: bytes, blob: bytes) -> Any:
    if len(blob) < HEADER_LEN:
        raise SnapshotCorrupt(f"{len(blob)} bytes is shorter than a snapshot header")
    magic, written_as, length, digest = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise SnapshotCorrupt("not a snapshot (bad magic)")
    if written_as != fingerprint:
        raise SnapshotOutdated(f"format {written_as.hex()}, this fold reads {fingerprint.hex()}")
    body = memoryview(blob)[HEADER_LEN:]
    if len(body) != length:
        raise SnapshotCorrupt(f"body of {len(body)} bytes, the header says {length}")
    if _digest(body) != digest:
        raise SnapshotCorrupt("body digest does not match")
    try:
        return _PlainUnpickler(io.BytesIO(zlib.decompress(body))).load()
    except Exception as exc:  # a digest match makes this a writer's bug, still not a reason to misread
        raise SnapshotCorrupt(f"body does not decode: {exc!r}") from exc


def _digest(body: bytes | memoryview) -> bytes:
    return hashlib.blake2b(body, digest_size=16).digest()
