"""Random runs of one batch for the property tests: every producer's events in an order hypothesis
picks (see test_lifecycle_properties.py for what a run does and what it checks after every step).

`Run(data)` draws with `data.draw`; `Scripted` replays recorded draws, to pin a run with @example.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from lifecycle_world import PRODUCER, USER, Builder, World
from memory_front import MemoryFront, job_body

from events.catalog import (
    AttemptAssigned,
    AttemptKillRequested,
    Event,
    JobAttemptScheduled,
    JobCreating,
    RetryPolicy,
)
from events.core.lifecycle import (
    CANCELLED,
    COMPLETE_STATES,
    CREATING,
    ERROR,
    FAILED,
    READY,
    RUNNING,
    SUCCESS,
    BatchState,
    react,
)
from services.front.errors import Conflict

OUTCOMES = [("Success", None, 0), ("Failed", "nonzero_exit", 1), ("Failed", "out_of_memory", 137),
            ("Error", "timed_out", None), ("Error", "instance_lost", None), ("Error", "worker_crashed", None),
            ("Error", "image_pull_failed", None), ("Cancelled", "killed", None), ("Error", "preempted", None),
            ("Failed", "nonzero_exit", 3)]
# the even-numbered jobs of a run retry under this policy (no draw: the pinned runs replay as recorded)
POLICY = RetryPolicy(oom_memory_multiplier=2.0, oom_max_memory_bytes=8 * 2**30, max_preemptions=1,
                     retry_exit_codes=(3,))
POLICY_SPEC = {"oom_memory_multiplier": 2, "oom_max_memory": "8Gi", "max_preemptions": 1, "retry_exit_codes": [3]}
# weights: the common events often, cancellations rarely (one cancels most of what follows)
ACTIONS = (["react"] * 4 + ["land"] * 4 + ["schedule"] * 4 + ["start"] * 2 + ["complete"] * 4 + ["redeliver"] * 2
           + ["stale"] * 3 + ["cancel_batch", "cancel_group"] + ["create"] * 2 + ["boot"] * 2 + ["activation_timeout"])


# runs about retries: few cancellations, mostly failures a policy (or Hail's rule) retries
RETRY_OUTCOMES = [("Success", None, 0), ("Failed", "out_of_memory", 137), ("Failed", "out_of_memory", 137),
                  ("Error", "preempted", None), ("Error", "preempted", None), ("Failed", "nonzero_exit", 3),
                  ("Error", "instance_lost", None), ("Failed", "nonzero_exit", 1)]
RETRY_ACTIONS = [a for a in ACTIONS if a not in ("cancel_batch", "cancel_group")] + ["complete"] * 4


class Run:
    outcomes = OUTCOMES

    def __init__(self, data: st.DataObject | Scripted, verdicts: bool = True, deposed_leaders: bool = True,
                 builder: Builder | None = None) -> None:
        """`verdicts` False: a log written before verdicts existed (every decision v1: awaits_verdict
        false), which every fold takes where it lands. `deposed_leaders` False: every decision carries
        the newest scheduler epoch. `builder`: the other producers' events, for another batch id."""
        self.data = data.replay() if isinstance(data, Scripted) else data  # an @example may run more than once
        self.verdicts = verdicts
        self.deposed_leaders = deposed_leaders
        self.b = builder or Builder()
        self.front = MemoryFront(self.b.batch_id, USER, PRODUCER, self.b.clock)
        self.w = World()
        self.in_flight: list[Event] = []  # derived batch events not yet in the log
        self.in_flight_ids: set[str] = set()
        self.appended_derived: set[str] = set()
        self.final_states: dict[int, str] = {}
        self.epoch = 1
        self.n_attempts = 0

    @property
    def s(self) -> BatchState:
        assert self.w.state is not None
        return self.w.state

    def draw(self, strategy):
        return self.data.draw(strategy)

    def setup(self) -> None:
        """The batch, two nested groups and its jobs, submitted through the front's own parser and
        planner (memory_front.py) as Hail's client would: one update, committed."""
        n_jobs = self.draw(st.integers(1, 9))
        parents = {j: tuple(sorted(self.draw(st.sets(st.integers(1, j - 1), max_size=3)))) if j > 1 else ()
                   for j in range(1, n_jobs + 1)}
        always = self.draw(st.sets(st.integers(1, n_jobs), max_size=3))
        groups = [self.draw(st.integers(0, 2)) for _ in range(n_jobs)]
        front = self.front
        events = front.create_batch({"billing_project": "bp", "token": "tok", "n_jobs": n_jobs,
                                     "cancel_after_n_failures": self.draw(st.none() | st.integers(1, 3))})
        update_id, created = front.create_update({"token": "u1", "n_jobs": n_jobs, "n_job_groups": 2})
        events += created
        events += front.add_groups(update_id, [
            {"job_group_id": 1, "absolute_parent_id": 0},
            {"job_group_id": 2, "in_update_parent_id": 1,
             "cancel_after_n_failures": self.draw(st.none() | st.integers(1, 2))}])
        n_max = self.draw(st.integers(1, 3))
        events += front.add_jobs(update_id, [
            job_body(j, in_update_parents=parents[j], always_run=j in always, n_max_attempts=n_max,
                     **({"group": 0} if groups[j - 1] == 0 else {"in_update_group": groups[j - 1]}),
                     retry_policy=POLICY_SPEC if j % 2 == 0 else None)
            for j in range(1, n_jobs + 1)])
        events += front.commit(update_id)
        self.append(*events)

    def add_update(self, n_jobs: int) -> None:
        """A later update through the front: a chain of `n_jobs` jobs, the first a child of job 1. The
        front refuses it (409, nothing appended) if the batch was cancelled."""
        try:
            update_id, events = self.front.create_update({"token": f"u{len(self.front.updates) + 1}",
                                                          "n_jobs": n_jobs})
        except Conflict:
            assert self.s.cancelled
            return
        events += self.front.add_jobs(update_id, [job_body(1, parents=(1,))] + [
            job_body(j, in_update_parents=(j - 1,)) for j in range(2, n_jobs + 1)])
        events += self.front.commit(update_id)
        self.append(*events)

    # --- producers ------------------------------------------------------------------------------
    def append(self, *events: Event) -> None:
        for e in events:
            state = self.w.state
            job = state.jobs.get(e.job_id) if state and isinstance(e, JobAttemptScheduled | JobCreating) else None
            before = (job.state, job.attempt, job.attempt.instance_name if job.attempt else None) if job else None
            cancelled_before = job is not None and self.s.is_job_cancelled(job)
            due_before = dict(state.verdicts_due) if state else {}
            self.w.append(e)
            if cancelled_before:
                after = (job.state, job.attempt, job.attempt.instance_name if job.attempt else None)
                assert after == before, "a cancelled job was placed"
            if job is not None:  # a decision gets one verdict, or none if it repeats one judged already
                new = [v for k, v in self.s.verdicts_due.items() if k not in due_before]
                assert len(new) <= 1 and all(k in self.s.verdicts_due for k in due_before)
                moved = (job.state, job.attempt) != before[:2]
                if self.verdicts:
                    assert moved == any(v.reason is None for v in new), "a decision moved the job without a verdict"
                else:
                    assert not new, "a decision from before verdicts got one"
            self.check_invariants()

    def react(self) -> None:
        derived = react(self.s, PRODUCER)
        kills = {e.attempt_id for e in derived if isinstance(e, AttemptKillRequested)}
        for e in derived:
            if isinstance(e, AttemptAssigned):
                job = self.s.jobs[e.job_id]
                # placed before it was cancelled: the worker must learn of it to end it, so only with its kill
                assert not self.s.is_job_cancelled(job) or e.attempt_id in kills, \
                    "a cancelled job was assigned to a worker without its kill"
                assert job.state == RUNNING and job.attempt.attempt_id == e.attempt_id
            elif e.TOPIC == "batch" and e.event_id not in self.in_flight_ids:
                assert e.event_id not in self.appended_derived, f"re-derived an applied event: {e}"
                self.in_flight.append(e)
                self.in_flight_ids.add(e.event_id)
        self.s.clear_dirty()

    def land(self, n: int | None = None) -> None:
        """The next derived events reach the log (in order), possibly after others' events."""
        n = len(self.in_flight) if n is None else n
        landing, self.in_flight = self.in_flight[:n], self.in_flight[n:]
        for e in landing:
            self.in_flight_ids.discard(e.event_id)
            self.appended_derived.add(e.event_id)
            self.append(e)

    def jobs_in(self, *states: str) -> list[int]:
        return sorted(j.job_id for j in self.s.jobs.values() if j.state in states)

    def judged_in(self, *states: str) -> list[int]:
        """Jobs in `states` whose current attempt's acceptance is in the log: only those can a worker
        (or health) report on, as the resolver appends an AttemptAssigned only after the verdict."""
        pending = {(v.job_id, v.attempt_id) for v in self.s.verdicts_due.values() if v.reason is None}
        return [j for j in self.jobs_in(*states) if (j, self.s.jobs[j].attempt.attempt_id) not in pending]

    def step(self, action: str) -> None:
        b, s = self.b, self.s
        if action == "react":
            self.react()
        elif action == "land" and self.in_flight:
            self.land(self.draw(st.integers(1, len(self.in_flight))))
        elif action == "schedule" and (ready := self.jobs_in(READY)):
            job_id = self.draw(st.sampled_from(ready))
            self.epoch += self.draw(st.sampled_from([0, 0, 0, 1]))
            epoch = self.epoch
            if self.deposed_leaders:
                epoch -= self.draw(st.sampled_from([0, 0, 0, 1]))  # sometimes a deposed leader
            self.n_attempts += 1
            self.append(b.sj(job_id, f"at{self.n_attempts}", epoch=epoch, awaits_verdict=self.verdicts,
                             memory_bytes=self.s.jobs[job_id].requested_memory_bytes))
        elif action == "start" and (running := self.judged_in(RUNNING)):
            job = s.jobs[self.draw(st.sampled_from(running))]
            self.append(b.mjs(job.job_id, job.attempt.attempt_id))
        elif action == "complete" and (running := self.judged_in(RUNNING)):
            job = s.jobs[self.draw(st.sampled_from(running))]
            outcome, cause, code = self.draw(st.sampled_from(self.outcomes))
            self.append(b.mjc(job.job_id, job.attempt.attempt_id, outcome, cause, code))
        elif action == "redeliver":
            earlier = self.draw(st.sampled_from(self.w.log))
            self.expect_no_change(earlier)
        elif action == "stale":
            # the interesting case first: a job already running a newer attempt
            past = ([(j.job_id, a) for j in s.jobs.values() if j.attempt for a in j.attempt_ids
                     if a != j.attempt.attempt_id]
                    or [(j.job_id, a) for j in s.jobs.values() if j.attempt is None for a in j.attempt_ids])
            if past:
                job_id, attempt = self.draw(st.sampled_from(past))
                outcome, cause, code = self.draw(st.sampled_from(self.outcomes))
                self.expect_no_change(self.draw(st.sampled_from([b.mjs(job_id, attempt),
                                                                 b.mjc(job_id, attempt, outcome, cause, code)])))
        elif action == "create" and (ready := self.jobs_in(READY)):
            self.n_attempts += 1
            self.append(b.creating(self.draw(st.sampled_from(ready)), f"at{self.n_attempts}", epoch=self.epoch,
                                   awaits_verdict=self.verdicts))
        elif action == "boot" and (creating := self.jobs_in(CREATING)):
            job = s.jobs[self.draw(st.sampled_from(creating))]  # its instance activated: the same attempt there
            self.append(b.sj(job.job_id, job.attempt.attempt_id, epoch=self.epoch, instance=job.attempt.instance_name,
                             memory_bytes=job.attempt.memory_bytes,
                             awaits_verdict=self.verdicts))
        elif action == "activation_timeout" and (creating := self.judged_in(CREATING)):
            job = s.jobs[self.draw(st.sampled_from(creating))]  # health: the instance never came
            self.append(b.mjc(job.job_id, job.attempt.attempt_id, "Error", "instance_lost", None,
                              instance=job.attempt.instance_name))
        elif action == "cancel_batch":
            self.append(*self.front.cancel_batch())
        elif action == "cancel_group":
            self.append(*self.front.cancel_group(self.draw(st.integers(1, 2))))

    def expect_no_change(self, event: Event) -> None:
        before, due = self.s.snapshot(), list(self.s.verdicts_due)
        self.append(event)
        assert self.s.snapshot() == before, f"{event} changed the state"
        assert list(self.s.verdicts_due) == due, f"{event} was judged again"

    # --- invariants -------------------------------------------------------------------------------
    def check_invariants(self) -> None:
        s = self.w.state
        if s is None:
            return
        for gid, group in s.groups.items():
            members = [j for j in s.jobs.values() if j.committed and gid in s.groups[j.job_group_id].ancestors]
            states = [j.state for j in members]
            assert group.n_jobs == len(members)
            assert group.n_succeeded == states.count(SUCCESS)
            assert group.n_failed == states.count(FAILED) + states.count(ERROR)
            assert group.n_cancelled == states.count(CANCELLED)
            assert group.n_completed == group.n_succeeded + group.n_failed + group.n_cancelled
        for job in s.jobs.values():
            if job.job_id in self.final_states:
                assert job.state == self.final_states[job.job_id], "a completed job changed state"
            elif job.state in COMPLETE_STATES:
                self.final_states[job.job_id] = job.state
            assert job.n_pending_parents >= 0
            assert job.n_attempts <= job.n_max_attempts, "a retry went past n_max_attempts"
            if job.overrides is not None:  # only a policy's retry changes what a job asks for
                assert job.retry_policy is not None or (job.overrides.memory_bytes is None
                                                        and not job.overrides.non_preemptible)
                assert (job.overrides.memory_bytes or 0) <= POLICY.oom_max_memory_bytes, "memory past the cap"

    def drive_to_quiescence(self) -> None:
        for _ in range(500):
            self.react()
            if self.in_flight:
                self.land()
                continue
            ready, running, creating = self.jobs_in(READY), self.jobs_in(RUNNING), self.jobs_in(CREATING)
            if not ready and not running and not creating:
                return
            for job_id in creating:  # its instance boots (an SJ the core refuses if the job is cancelled)
                job = self.s.jobs[job_id]
                if job.completion is None:
                    self.append(self.b.sj(job_id, job.attempt.attempt_id, epoch=self.epoch,
                                          memory_bytes=job.attempt.memory_bytes,
                                          instance=job.attempt.instance_name, awaits_verdict=self.verdicts))
            for job_id in ready:
                self.n_attempts += 1
                self.append(self.b.sj(job_id, f"at{self.n_attempts}", epoch=self.epoch, awaits_verdict=self.verdicts,
                                      memory_bytes=self.s.jobs[job_id].requested_memory_bytes))
            for job_id in running:
                job = self.s.jobs[job_id]
                if job.completion is None:
                    self.append(self.b.mjc(job_id, job.attempt.attempt_id, "Success"))
        raise AssertionError("the batch never quiesced")


class Pick:
    """A scripted draw from `st.sampled_from(seq)`: the first element the predicate accepts."""

    def __init__(self, predicate: Callable[[Any], bool], what: str) -> None:
        self.predicate, self.what = predicate, what

    def __repr__(self) -> str:
        return f"Pick({self.what})"


class Scripted:
    """Stands in for st.data() in an @example: hands out recorded draws in order."""

    def __init__(self, *draws: Any) -> None:
        self.recorded = draws
        self.draws = list(draws)

    def replay(self) -> Scripted:
        return Scripted(*self.recorded)

    def draw(self, strategy: Any, label: object = None) -> Any:
        value = self.draws.pop(0)
        if isinstance(value, Pick):
            return next(x for x in strategy.elements if value.predicate(x))
        return value

    def __repr__(self) -> str:
        return f"Scripted({list(self.recorded)!r})"


class RetryRun(Run):
    """A run whose attempts mostly fail in ways a retry policy handles."""

    outcomes = RETRY_OUTCOMES
