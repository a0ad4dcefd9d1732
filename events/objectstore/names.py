"""Bucket and object names (GCS's rules), and `gs://` URLs.

    parse_gs_url("gs://my-bucket/dir/file.txt") == GsUrl("my-bucket", "dir/file.txt")

A URL with an empty object part (`gs://b` or `gs://b/`) names the whole bucket as a prefix.
Errors are ValueError (InvalidObjectName) with a message that says what is wrong with the name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from events.objectstore.errors import InvalidObjectName

# GCS: 3-63 characters (up to 222 with dots), lowercase letters, digits, '-', '_' and '.', starting
# and ending with a letter or digit; not an IP address; no "goog" prefix.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
MAX_OBJECT_NAME_BYTES = 1024


def check_bucket_name(bucket: str) -> str:
    if not _BUCKET.match(bucket) or _IP.match(bucket) or bucket.startswith("goog"):
        raise InvalidObjectName(f"{bucket!r} is not a valid bucket name: 3-63 lowercase letters, digits, "
                                "'-', '_' or '.', starting and ending with a letter or digit")
    if "." not in bucket and len(bucket) > 63:
        raise InvalidObjectName(f"bucket name {bucket!r} is longer than 63 characters")
    return bucket


def check_object_name(key: str) -> str:
    encoded = key.encode("utf-8", errors="strict")
    if not key or len(encoded) > MAX_OBJECT_NAME_BYTES:
        raise InvalidObjectName(f"object name {key[:80]!r} must be 1-{MAX_OBJECT_NAME_BYTES} bytes of UTF-8")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise InvalidObjectName(f"object name {key[:80]!r} contains a control character")
    if key in (".", ".."):
        raise InvalidObjectName(f"object name {key!r} is not allowed")
    return key


@dataclass(frozen=True, slots=True)
class GsUrl:
    bucket: str
    key: str  # "" for the whole bucket

    def __str__(self) -> str:
        return f"gs://{self.bucket}/{self.key}"

    @property
    def is_prefix(self) -> bool:
        """The URL can only name a "directory" (ends in '/' or names the whole bucket)."""
        return self.key == "" or self.key.endswith("/")

    def child(self, relative: str) -> GsUrl:
        base = self.key if self.key == "" or self.key.endswith("/") else self.key + "/"
        return GsUrl(self.bucket, base + relative)


def is_gs_url(url: str) -> bool:
    return url.startswith("gs://")


def parse_gs_url(url: str) -> GsUrl:
    """Split a gs://BUCKET/OBJECT URL; InvalidObjectName says what is wrong with it."""
    if not url.startswith("gs://"):
        raise InvalidObjectName(f"{url!r} is not a gs://BUCKET/OBJECT URL")
    rest = url[len("gs://"):]
    bucket, _, key = rest.partition("/")
    check_bucket_name(bucket)
    if key:
        check_object_name(key)
        if any(part in (".", "..") for part in key.split("/")):
            raise InvalidObjectName(f"{url!r}: '.' and '..' are not allowed in object names")
    return GsUrl(bucket, key)
