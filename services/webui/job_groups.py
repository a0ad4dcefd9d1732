"""A batch's job groups as a tree for the UI (Hail #14598): each group with its state counts and the
jobs that matter most in it, nested under its parent.

Counters follow Hail: a group's n_jobs, completed, succeeded, failed and cancelled (the read model's
`job_groups`) cover its own jobs and every descendant's; the live states (Pending, Ready, Creating,
Running) are counted here from the jobs the same way. Each group shows its first few direct jobs,
failed ones first, then running, so a failure is seen in its action > stage > partition context.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

Row = dict[str, Any]
JOBS_PER_GROUP = 5  # shown in the tree; the group's own page lists them all
MAX_GROUPS = 500  # a tree larger than this is cut (the group pages still show every group)
LIVE_STATES = ("Pending", "Ready", "Creating", "Running")
# which of a group's direct jobs the tree shows first
_PRIORITY = "CASE state WHEN 'Failed' THEN 0 WHEN 'Error' THEN 0 WHEN 'Running' THEN 1 WHEN 'Creating' THEN 1 " \
            "WHEN 'Ready' THEN 2 WHEN 'Cancelled' THEN 3 WHEN 'Pending' THEN 4 ELSE 5 END"


@dataclass
class GroupNode:
    row: Row  # the read model's job_groups row
    live: dict[str, int] = field(default_factory=dict)  # Pending/Ready/Creating/Running, with descendants
    direct_jobs: int = 0  # jobs of this group itself (not its descendants)
    jobs: list[Row] = field(default_factory=list)  # the first JOBS_PER_GROUP direct jobs, by priority
    children: list[GroupNode] = field(default_factory=list)

    @property
    def job_group_id(self) -> int:
        return int(self.row["job_group_id"])

    @property
    def name(self) -> str:
        attributes = self.row.get("attributes") or {}
        return str(attributes.get("name") or ("batch" if self.job_group_id == 0 else f"group {self.job_group_id}"))

    @property
    def api_state(self) -> str:
        """Hail's job group state: failure, cancelled, success or running, in that order."""
        r = self.row
        if r["n_failed"] > 0:
            return "failure"
        if r["cancelled"] or r["n_cancelled"] > 0:
            return "cancelled"
        if r["n_completed"] >= r["n_jobs"]:
            return "success"
        return "running"


async def _rows(conn: AsyncConnection, query: str, params: Any) -> list[Row]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query, params)
    return await cur.fetchall()


async def group_tree(conn: AsyncConnection, batch_id: int, root_id: int = 0) -> GroupNode | None:
    """The subtree rooted at `root_id` (the batch's root group 0 by default), None if there is no such group."""
    groups = await _rows(conn, """
        SELECT batch_id, job_group_id, parent_job_group_id, ancestor_ids, attributes, cancelled, n_jobs,
               n_completed, n_succeeded, n_failed, n_cancelled, time_created, time_completed, cost, cost_breakdown,
               msec_mcpu
        FROM job_groups WHERE batch_id = %s AND %s = ANY(ancestor_ids)
        ORDER BY job_group_id LIMIT %s""", (batch_id, root_id, MAX_GROUPS + 1))
    nodes = {int(g["job_group_id"]): GroupNode(g) for g in groups[:MAX_GROUPS]}
    if root_id not in nodes:
        return None
    ids = list(nodes)
    counts = await _rows(conn, """
        SELECT job_group_id, state, count(*) AS n FROM jobs
        WHERE batch_id = %s AND committed AND job_group_id = ANY(%s) GROUP BY job_group_id, state""",
                         (batch_id, ids))
    for c in counts:
        node = nodes[int(c["job_group_id"])]
        node.direct_jobs += int(c["n"])
        if c["state"] in LIVE_STATES:
            for ancestor in node.row["ancestor_ids"]:
                if ancestor in nodes and root_id in nodes[ancestor].row["ancestor_ids"]:
                    live = nodes[ancestor].live
                    live[c["state"]] = live.get(c["state"], 0) + int(c["n"])
    shown = await _rows(conn, f"""
        SELECT * FROM (
            SELECT j.batch_id, j.job_id, j.job_group_id, j.name, j.state, j.exit_code, j.duration_ms, j.cost,
                   j.n_attempts, ROW_NUMBER() OVER (PARTITION BY j.job_group_id ORDER BY {_PRIORITY}, j.job_id) AS rank
            FROM jobs j WHERE j.batch_id = %s AND j.committed AND j.job_group_id = ANY(%s)) ranked
        WHERE rank <= %s ORDER BY job_group_id, rank""", (batch_id, ids, JOBS_PER_GROUP))
    for job in shown:
        nodes[int(job["job_group_id"])].jobs.append(job)
    children: dict[int, list[GroupNode]] = defaultdict(list)
    for node in nodes.values():
        parent = node.row["parent_job_group_id"]
        if node.job_group_id != root_id and parent is not None:
            children[int(parent)].append(node)
    for node in nodes.values():
        node.children = children.get(node.job_group_id, [])
    return nodes[root_id]


async def ancestors(conn: AsyncConnection, batch_id: int, job_group_id: int) -> list[Row] | None:
    """The group and its ancestors, root first (the breadcrumb); None if the batch has no such group."""
    rows = await _rows(conn, "SELECT ancestor_ids FROM job_groups WHERE batch_id = %s AND job_group_id = %s",
                       (batch_id, job_group_id))
    if not rows:
        return None
    chain = list(rows[0]["ancestor_ids"])
    found = await _rows(conn, "SELECT job_group_id, attributes FROM job_groups WHERE batch_id = %s AND "
                              "job_group_id = ANY(%s)", (batch_id, chain))
    by_id = {int(r["job_group_id"]): r for r in found}
    return [by_id[g] for g in reversed(chain) if g in by_id]
