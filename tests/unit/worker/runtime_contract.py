"""The ContainerRuntime contract, run over the fake (here) and podman (tests/integration/worker).

A subclass provides two fixtures: `runtime` (a ContainerRuntime) and `image` (an image it has).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from worker.runtime import ContainerNotFound, ContainerSpec, ImageNotFound, RuntimeError_


def _spec(image: str, command: tuple[str, ...], **kw: object) -> ContainerSpec:
    return ContainerSpec(name=f"contract-{uuid.uuid4().hex[:10]}", image=image, command=command,
                         labels=kw.pop("labels", {"squall.test": "contract"}), **kw)  # type: ignore[arg-type]


async def _run(runtime, spec: ContainerSpec) -> tuple[str, int | None, bytes]:
    cid = await runtime.create(spec)
    out: list[bytes] = []
    await runtime.start(cid)
    logs = asyncio.create_task(runtime.follow_logs(cid, out.append))
    exit_ = await runtime.wait(cid)
    await asyncio.wait_for(logs, 10)
    return cid, exit_.exit_code, b"".join(out)


class RuntimeContract:
    async def test_exit_codes_and_output_are_reported(self, runtime, image) -> None:
        cid, code, out = await _run(runtime, _spec(image, ("sh", "-c", "echo hello; echo oops >&2; exit 3")))
        try:
            assert code == 3
            assert b"hello\n" in out and b"oops\n" in out
        finally:
            await runtime.remove(cid)

    async def test_success_is_exit_zero(self, runtime, image) -> None:
        cid, code, _ = await _run(runtime, _spec(image, ("true",)))
        await runtime.remove(cid)
        assert code == 0

    async def test_wait_after_exit_returns_the_same_exit(self, runtime, image) -> None:
        cid, code, _ = await _run(runtime, _spec(image, ("sh", "-c", "exit 5")))
        again = await runtime.wait(cid)
        await runtime.remove(cid)
        assert code == again.exit_code == 5

    async def test_kill_stops_a_running_container_quickly(self, runtime, image) -> None:
        cid = await runtime.create(_spec(image, ("sleep", "60")))
        await runtime.start(cid)
        waiter = asyncio.create_task(runtime.wait(cid))
        await asyncio.sleep(0.3)
        assert not waiter.done()
        await runtime.kill(cid)
        exit_ = await asyncio.wait_for(waiter, 5)
        await runtime.kill(cid)  # killing an exited container is not an error
        await runtime.remove(cid)
        assert exit_.exit_code == 137

    async def test_list_by_label_finds_it_and_remove_forgets_it(self, runtime, image) -> None:
        tag = uuid.uuid4().hex
        cid = await runtime.create(_spec(image, ("true",), labels={"squall.test": tag}))
        found = await runtime.list_by_label("squall.test", tag)
        assert [c.id for c in found] == [cid] and found[0].state == "created"
        await runtime.remove(cid)
        await runtime.remove(cid)  # idempotent
        assert await runtime.list_by_label("squall.test", tag) == []
        with pytest.raises(ContainerNotFound):
            await runtime.wait(cid)

    async def test_a_second_container_with_the_same_name_is_refused(self, runtime, image) -> None:
        spec = _spec(image, ("true",))
        cid = await runtime.create(spec)
        try:
            with pytest.raises(RuntimeError_):
                await runtime.create(spec)
        finally:
            await runtime.remove(cid)

    async def test_missing_local_image_is_not_found(self, runtime) -> None:
        with pytest.raises(ImageNotFound):
            await runtime.ensure_image(f"localhost/squall-no-such-image-{uuid.uuid4().hex[:8]}:1")

    async def test_usage_is_none_when_not_running(self, runtime, image) -> None:
        cid, _, _ = await _run(runtime, _spec(image, ("true",)))
        assert await runtime.usage(cid) is None
        await runtime.remove(cid)
