"""JSON Schemas of the request bodies, published in the OpenAPI document (GET /openapi.json).

They describe what `services.front.specs` accepts; the server's own checks are the authority
(and answer 400 naming the field), so these are documentation and fuzzing input, not validation.
"""

from __future__ import annotations

from typing import Any

_ATTRIBUTES: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}
_COPIES: dict[str, Any] = {"type": "array", "items": {
    "type": "object", "required": ["from", "to"], "additionalProperties": False,
    "properties": {"from": {"type": "string"}, "to": {"type": "string"}}}}

BATCH: dict[str, Any] = {
    "type": "object", "required": ["billing_project", "token", "n_jobs"], "additionalProperties": False,
    "properties": {
        "billing_project": {"type": "string"}, "token": {"type": "string"},
        "n_jobs": {"type": "integer", "minimum": 0}, "n_job_groups": {"type": "integer", "minimum": 0},
        "attributes": _ATTRIBUTES, "callback": {"type": "string"},
        "cancel_after_n_failures": {"type": "integer", "minimum": 1},
    },
}

UPDATE: dict[str, Any] = {
    "type": "object", "required": ["token", "n_jobs"], "additionalProperties": False,
    "properties": {"token": {"type": "string"}, "n_jobs": {"type": "integer", "minimum": 0},
                   "n_job_groups": {"type": "integer", "minimum": 0}},
}

JOB_GROUP: dict[str, Any] = {
    "type": "object", "required": ["job_group_id"], "additionalProperties": False,
    "properties": {
        "job_group_id": {"type": "integer", "minimum": 1}, "attributes": _ATTRIBUTES,
        "callback": {"type": "string"}, "cancel_after_n_failures": {"type": "integer", "minimum": 1},
        "absolute_parent_id": {"type": "integer", "minimum": 0}, "in_update_parent_id": {"type": "integer", "minimum": 0},
    },
}

JOB: dict[str, Any] = {
    "type": "object", "required": ["job_id", "process"],
    "properties": {
        "job_id": {"type": "integer", "minimum": 1},
        "process": {"oneOf": [
            {"type": "object", "required": ["type", "image", "command"], "properties": {
                "type": {"const": "docker"}, "image": {"type": "string"},
                "command": {"type": "array", "items": {"type": "string"}}}},
            {"type": "object", "required": ["type", "jar_spec", "command"], "properties": {
                "type": {"const": "jvm"}, "profile": {"type": "boolean"},
                "jar_spec": {"type": "object", "properties": {"type": {"const": "jar_url"}, "value": {"type": "string"}}},
                "command": {"type": "array", "items": {"type": "string"}}}},
        ]},
        "absolute_parent_ids": {"type": "array", "items": {"type": "integer", "minimum": 1}},
        "in_update_parent_ids": {"type": "array", "items": {"type": "integer", "minimum": 1}},
        "absolute_job_group_id": {"type": "integer", "minimum": 0},
        "in_update_job_group_id": {"type": "integer", "minimum": 0},
        "always_run": {"type": "boolean"}, "n_max_attempts": {"type": "integer", "minimum": 1},
        "always_copy_output": {"type": "boolean"}, "attributes": _ATTRIBUTES,
        "env": {"type": "array", "items": {"type": "object", "required": ["name", "value"], "properties": {
            "name": {"type": "string"}, "value": {"type": "string"}}}},
        "input_files": _COPIES, "output_files": _COPIES,
        "resources": {"type": "object", "properties": {
            "cpu": {"type": "string"}, "memory": {"type": "string"}, "storage": {"type": "string"},
            "machine_type": {"type": "string"}, "preemptible": {"type": "boolean"}}},
        "network": {"enum": ["public", "private"]}, "port": {"type": "integer"},
        "timeout": {"type": "number", "exclusiveMinimum": 0},
        "regions": {"type": "array", "items": {"type": "string"}},
        "user_code": {"type": "string"}, "mount_tokens": {"type": "boolean"},
    },
}

CREATE_FAST: dict[str, Any] = {
    "type": "object", "required": ["batch"], "properties": {
        "batch": BATCH, "bunch": {"type": "array", "items": JOB}, "job_groups": {"type": "array", "items": JOB_GROUP}},
}

UPDATE_FAST: dict[str, Any] = {
    "type": "object", "required": ["update"], "properties": {
        "update": UPDATE, "bunch": {"type": "array", "items": JOB}, "job_groups": {"type": "array", "items": JOB_GROUP}},
}

JOBS: dict[str, Any] = {"type": "array", "items": JOB, "maxItems": 1024}
JOB_GROUPS: dict[str, Any] = {"type": "array", "items": JOB_GROUP}

BILLING_LIMIT: dict[str, Any] = {
    "type": "object", "required": ["limit"], "additionalProperties": False,
    "properties": {"limit": {"anyOf": [{"type": "number", "minimum": 0}, {"type": "null"}],
                             "description": "USD; null removes the limit"}},
}
