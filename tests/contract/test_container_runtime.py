"""One contract for every ContainerRuntime: the in-memory fake (worker/fake_runtime.py) and podman.

The worker's unit tests run jobs on the fake; if a test here passes on the fake but fails on podman
(or the reverse), the fake is lying and those tests are not to be trusted: fix the fake.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import pytest

from tests.podman_support import BUSYBOX
from worker.fake_runtime import FakeRuntime
from worker.runtime import ContainerNotFound, ContainerRuntime, ContainerSpec, ImageNotFound, RuntimeError_


@dataclass
class Case:
    runtime: ContainerRuntime
    image: str  # an image the runtime has


@pytest.fixture(params=["fake", pytest.param("podman", marks=pytest.mark.podman)])
def case(request: pytest.FixtureRequest) -> Case:
    if request.param == "fake":
        return Case(FakeRuntime(), BUSYBOX)
    return Case(request.getfixturevalue("podman"), BUSYBOX)


def _spec(image: str, command: tuple[str, ...], **kw: object) -> ContainerSpec:
    return ContainerSpec(name=f"contract-{uuid.uuid4().hex[:10]}", image=image, command=command,
                         labels=kw.pop("labels", {"squall.test": "contract"}), **kw)  # type: ignore[arg-type]


async def _run(runtime: ContainerRuntime, spec: ContainerSpec) -> tuple[str, int | None, bytes]:
    cid = await runtime.create(spec)
    out: list[bytes] = []
    await runtime.start(cid)
    logs = asyncio.create_task(runtime.follow_logs(cid, out.append))
    exit_ = await runtime.wait(cid)
    await asyncio.wait_for(logs, 10)
    return cid, exit_.exit_code, b"".join(out)


async def test_exit_codes_and_output_are_reported(case: Case) -> None:
    cid, code, out = await _run(case.runtime, _spec(case.image, ("sh", "-c", "echo hello; echo oops >&2; exit 3")))
    try:
        assert code == 3
        assert b"hello\n" in out and b"oops\n" in out
    finally:
        await case.runtime.remove(cid)


async def test_success_is_exit_zero(case: Case) -> None:
    cid, code, _ = await _run(case.runtime, _spec(case.image, ("true",)))
    await case.runtime.remove(cid)
    assert code == 0


async def test_wait_after_exit_returns_the_same_exit(case: Case) -> None:
    cid, code, _ = await _run(case.runtime, _spec(case.image, ("sh", "-c", "exit 5")))
    again = await case.runtime.wait(cid)
    await case.runtime.remove(cid)
    assert code == again.exit_code == 5


async def test_kill_stops_a_running_container_quickly(case: Case) -> None:
    runtime, tag = case.runtime, uuid.uuid4().hex
    cid = await runtime.create(_spec(case.image, ("sleep", "60"), labels={"squall.test": tag}))
    await runtime.start(cid)
    waiter = asyncio.create_task(runtime.wait(cid))
    deadline = time.monotonic() + 10
    while [c.state for c in await runtime.list_by_label("squall.test", tag)] != ["running"]:
        assert time.monotonic() < deadline, "the container never reported running"
        await asyncio.sleep(0.05)
    assert not waiter.done()  # it runs: wait has nothing to return yet
    await runtime.kill(cid)
    exit_ = await asyncio.wait_for(waiter, 5)
    await runtime.kill(cid)  # killing an exited container is not an error
    await runtime.remove(cid)
    assert exit_.exit_code == 137


async def test_list_by_label_finds_it_and_remove_forgets_it(case: Case) -> None:
    runtime, tag = case.runtime, uuid.uuid4().hex
    cid = await runtime.create(_spec(case.image, ("true",), labels={"squall.test": tag}))
    found = await runtime.list_by_label("squall.test", tag)
    assert [c.id for c in found] == [cid] and found[0].state == "created"
    await runtime.remove(cid)
    await runtime.remove(cid)  # idempotent
    assert await runtime.list_by_label("squall.test", tag) == []
    with pytest.raises(ContainerNotFound):
        await runtime.wait(cid)


async def test_a_second_container_with_the_same_name_is_refused(case: Case) -> None:
    spec = _spec(case.image, ("true",))
    cid = await case.runtime.create(spec)
    try:
        with pytest.raises(RuntimeError_):
            await case.runtime.create(spec)
    finally:
        await case.runtime.remove(cid)


async def test_missing_local_image_is_not_found(case: Case) -> None:
    with pytest.raises(ImageNotFound):
        await case.runtime.ensure_image(f"localhost/squall-no-such-image-{uuid.uuid4().hex[:8]}:1")


async def test_usage_is_none_when_not_running(case: Case) -> None:
    cid, _, _ = await _run(case.runtime, _spec(case.image, ("true",)))
    assert await case.runtime.usage(cid) is None
    await case.runtime.remove(cid)
