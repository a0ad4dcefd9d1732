"""Users' own GCS credentials (real GCS only): a service-account key per user.

`squall user set-credentials USER KEYFILE` stores the key in front_user_credentials. Before the
front end accepts a job of that user naming a bucket, it makes sure the current key is published
in squall's bucket at users/<user>/gcs-key.json (events/objectstore/layout.py); the worker, told
only the job's user by its assignment, reads the key from there with its own identity and copies
the job's files as the user. So the key is never in an event, a log line, or a worker's flags.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from events.objectstore import ObjectStore, ObjectStoreError
from events.objectstore.layout import user_key_key
from services.front.errors import InvalidRequest, NotFound, Unavailable

_REQUIRED = ("type", "client_email", "private_key", "token_uri")


def parse_key(text: str) -> dict[str, Any]:
    """The key as a dict, or InvalidRequest saying what is missing (never quoting the key)."""
    try:
        info = json.loads(text)
    except ValueError:
        raise InvalidRequest("keyfile", "not JSON: give a service-account key file (gcloud iam "
                                        "service-accounts keys create)") from None
    if not isinstance(info, dict):
        raise InvalidRequest("keyfile", "not a JSON object")
    missing = [k for k in _REQUIRED if not info.get(k)]
    if missing or info.get("type") != "service_account":
        raise InvalidRequest("keyfile", f"not a service-account key (type must be service_account; missing: "
                                        f"{', '.join(missing) or 'nothing'})")
    return info


async def set_credentials(conn: Any, user: str, key_text: str, now_ms: int | None = None) -> str:
    """Store the user's key; returns its service account's email."""
    info = parse_key(key_text)
    cur = await conn.execute("SELECT 1 FROM front_users WHERE name = %s", (user,))
    if await cur.fetchone() is None:
        raise NotFound(f"no user {user!r}")
    digest = hashlib.sha256(key_text.encode()).hexdigest()
    await conn.execute(
        "INSERT INTO front_user_credentials (user_name, key_json, client_email, key_sha256, updated_at) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_name) DO UPDATE SET key_json = excluded.key_json, "
        "client_email = excluded.client_email, key_sha256 = excluded.key_sha256, updated_at = excluded.updated_at",
        (user, key_text, info["client_email"], digest, now_ms or int(time.time() * 1000)))
    return str(info["client_email"])


async def ensure_published(conn: Any, store: ObjectStore, system_bucket: str, user: str) -> None:
    """The user's current key is in squall's bucket (written only when it changed); 400 without one."""
    cur = await conn.execute("SELECT key_json, key_sha256, published_sha256 FROM front_user_credentials "
                             "WHERE user_name = %s", (user,))
    row = await cur.fetchone()
    if row is None:
        raise InvalidRequest("credentials", f"user {user!r} has no GCS credentials, so squall cannot copy job files "
                                            f"as them; an operator runs `squall user set-credentials {user} KEYFILE`")
    key_json, digest, published = row
    if digest == published:
        return
    try:
        await store.put(system_bucket, user_key_key(user), key_json.encode(), "application/json")
    except ObjectStoreError as exc:
        raise Unavailable(f"publishing the credentials of user {user!r} failed ({exc}); retry") from exc
    await conn.execute("UPDATE front_user_credentials SET published_sha256 = %s WHERE user_name = %s",
                       (digest, user))
