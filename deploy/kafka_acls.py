"""Who may do what on the log: one Kafka principal per role, and the least each role needs.

The broker denies everything that no ACL allows (StandardAuthorizer, allow.everyone.if.no.acl.found
false); the administrator (`admin`, a super user) creates topics and these ACLs. Each role gets:

| role       | reads (topics)                          | writes                          | groups                    |
|------------|-----------------------------------------|---------------------------------|---------------------------|
| front      | -                                       | batch                           | -                         |
| resolver   | batch                                   | batch, assignment, quarantine   | <p>resolver               |
| readmodel  | batch, instance, heartbeat              | quarantine                      | - (offsets in PostgreSQL) |
| scheduler  | batch, instance, heartbeat, control     | batch, instance, control        | <p>scheduler-leader, <p>scheduler-view.* |
| autoscaler | batch, instance, heartbeat              | instance                        | <p>autoscaler-view.*      |
| callbacks  | batch                                   | -                               | <p>callbacks              |
| worker     | assignment                              | batch, instance, heartbeat      | -                         |

plus DESCRIBE_CONFIGS on the topics a role rebuilds from (its start-up retention check). Kafka's
ACLs stop at the topic: a worker may append any event to the batch topic, so the consumers still
fence what a worker reports by attempt id. Nobody but the administrator may create, delete or alter
topics, read the quarantine, or touch another role's consumer groups.

The autoscaler's writes to the instance topic are its instances' events and its pools'
PoolScalingDecided (keyed by pool); every role that folds that topic reads the decisions with it.

    acls = stack_acls(Topics(prefix="squall."))                  # every role's bindings
    await apply_acls(admin_bootstrap, admin_security, acls)        # idempotent
    print(kafka_acls_commands(acls, "broker:9092", "admin.properties"))  # for an operator's cluster
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from events.kafka_security import KafkaSecurity
from events.retention import refolded_topics
from events.topics import Topics

ROLES = ("front", "resolver", "scheduler", "autoscaler", "readmodel", "callbacks", "worker")
ADMIN = "admin"

# Kafka protocol codes (org.apache.kafka.common.acl / resource)
_RESOURCE = {"topic": 2, "group": 3}
_PATTERN = {"literal": 3, "prefixed": 4}
_OPERATION = {"read": 3, "write": 4, "describe": 8, "describe_configs": 10}
_ALLOW = 3


@dataclass(frozen=True, order=True)
class Acl:
    principal: str  # e.g. User:worker
    resource: str  # topic | group
    name: str
    operation: str  # read | write | describe | describe_configs
    pattern: str = "literal"  # literal | prefixed


def _reads(t: Topics) -> dict[str, tuple[str, ...]]:
    return {"front": (), "resolver": (t.batch,), "readmodel": (t.batch, t.instance, t.heartbeat),
            "scheduler": (t.batch, t.instance, t.heartbeat, t.control),
            "autoscaler": (t.batch, t.instance, t.heartbeat), "callbacks": (t.batch,), "worker": (t.assignment,)}


def _writes(t: Topics) -> dict[str, tuple[str, ...]]:
    return {"front": (t.batch,), "resolver": (t.batch, t.assignment, t.quarantine), "readmodel": (t.quarantine,),
            "scheduler": (t.batch, t.instance, t.control), "autoscaler": (t.instance,), "callbacks": (),
            "worker": (t.batch, t.instance, t.heartbeat)}


def _groups(t: Topics) -> dict[str, tuple[tuple[str, str], ...]]:
    """(group name, pattern) per role; the views' groups carry a per-process suffix."""
    p = t.prefix
    return {"resolver": ((f"{p}resolver", "literal"),),
            "scheduler": ((f"{p}scheduler-leader", "literal"), (f"{p}scheduler-view.", "prefixed")),
            "autoscaler": ((f"{p}autoscaler-view.", "prefixed"),), "callbacks": ((f"{p}callbacks", "literal"),)}


def role_acls(topics: Topics, role: str, username: str | None = None) -> list[Acl]:
    """The bindings of one role; `username` is its SCRAM user (default: the role's name)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    principal = f"User:{username or role}"
    acls = [Acl(principal, "topic", name, "read") for name in _reads(topics)[role]]
    acls += [Acl(principal, "topic", name, "write") for name in _writes(topics)[role]]
    acls += [Acl(principal, "topic", name, "describe_configs") for name in refolded_topics(topics, role)]
    acls += [Acl(principal, "group", name, "read", pattern) for name, pattern in _groups(topics).get(role, ())]
    return sorted(set(acls))


def stack_acls(topics: Topics) -> list[Acl]:
    return [acl for role in ROLES for acl in role_acls(topics, role)]


async def apply_acls(bootstrap: str, admin: KafkaSecurity, acls: Sequence[Acl], timeout_ms: int = 30_000) -> None:
    """Create the bindings (creating one that exists changes nothing) as the administrator."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.protocol.admin import CreateAclsRequest

    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="squall-acls", request_timeout_ms=timeout_ms,
                                 **admin.client_kwargs())
    await client.start()
    try:
        # aiokafka's admin client has no create_acls yet: send its protocol request through it
        responses = await asyncio.gather(*(client._send_request(CreateAclsRequest(  # noqa: SLF001
            _RESOURCE[a.resource], a.name, _PATTERN[a.pattern], a.principal, "*", _OPERATION[a.operation], _ALLOW))
            for a in acls))
    finally:
        with contextlib.suppress(Exception):
            await client.close()
    for acl, response in zip(acls, responses, strict=True):
        for code, message in response.creation_responses:
            if code != 0:
                raise RuntimeError(f"creating ACL {acl} failed: error code {code} {message or ''}".rstrip())


def kafka_acls_commands(acls: Sequence[Acl], bootstrap: str, command_config: str) -> str:
    """The same bindings as kafka-acls.sh commands, for an operator to run on their own cluster."""
    lines = []
    for a in acls:
        target = f"--{a.resource} {a.name}" + (" --resource-pattern-type prefixed" if a.pattern == "prefixed" else "")
        operation = "DescribeConfigs" if a.operation == "describe_configs" else a.operation.capitalize()
        lines.append(f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config {command_config} --add "
                     f"--allow-principal {a.principal} --operation {operation} {target}")
    return "\n".join(lines)
