"""The supervisor's decisions, on fake components and a fake clock: restart at once, back off while a
component keeps dying, forget the backoff once it has lived, count and keep restarts."""

from __future__ import annotations

from pathlib import Path

from deploy import supervisor
from deploy.supervisor import Plan, Supervisor, Watched, read_counts, restart_delay


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Fake:
    """A component that is alive until `kill()`, and starts only when `fail` is False."""

    def __init__(self, alive: bool = True) -> None:
        self.is_alive, self.starts, self.fail = alive, 0, False

    def start(self) -> None:
        if self.fail:
            raise RuntimeError("port in use")
        self.starts += 1
        self.is_alive = True

    def kill(self) -> None:
        self.is_alive = False


def supervised(tmp_path: Path, **fakes: Fake) -> tuple[Supervisor, Clock]:
    (tmp_path / "run").mkdir()
    clock = Clock()
    sup = Supervisor(tmp_path, Plan([], kafka=False, postgres=False), clock=clock)
    sup.watched = [Watched(name, lambda f=f: f.is_alive, f.start) for name, f in fakes.items()]  # type: ignore[misc]
    return sup, clock


def test_the_delays_grow_to_a_cap() -> None:
    assert [restart_delay(n) for n in range(1, 9)] == [0, 1, 2, 4, 8, 16, 30, 30]


def test_what_is_not_running_at_the_start_is_started_not_counted_as_a_restart(tmp_path: Path) -> None:
    up, down = Fake(), Fake(alive=False)
    sup, _ = supervised(tmp_path, up=up, down=down)
    sup.step()
    assert (up.starts, down.starts) == (0, 1)
    assert read_counts(tmp_path)["down"]["restarts"] == 0


def test_a_death_is_restarted_at_once_then_later_and_later_while_it_keeps_dying(tmp_path: Path) -> None:
    f = Fake()
    sup, clock = supervised(tmp_path, scheduler=f)
    sup.step()
    f.kill()
    sup.step()
    assert f.starts == 1, "the first death is restarted at once"
    f.kill()
    sup.step()
    assert f.starts == 1, "the second death in a row waits a second"
    clock.now += 1.0
    sup.step()
    assert f.starts == 2
    f.kill()
    sup.step()
    clock.now += 1.9
    sup.step()
    assert f.starts == 2, "the third waits two"
    clock.now += 0.1
    sup.step()
    assert f.starts == 3
    assert read_counts(tmp_path)["scheduler"] == {"restarts": 3, "last_death": "is gone", "restarting": False}


def test_a_component_that_lived_a_while_is_restarted_at_once_again(tmp_path: Path) -> None:
    f = Fake()
    sup, clock = supervised(tmp_path, front=f)
    sup.step()
    for _ in range(3):
        f.kill()
        sup.step()
        clock.now += 10
        sup.step()
    clock.now += supervisor.STABLE_AFTER_S
    sup.step()
    f.kill()
    starts = f.starts
    sup.step()
    assert f.starts == starts + 1


def test_a_start_that_fails_is_tried_again_later_and_others_are_not_held_up(tmp_path: Path) -> None:
    broken, other = Fake(), Fake()
    sup, clock = supervised(tmp_path, broken=broken, other=other)
    sup.step()
    broken.kill()
    broken.fail = True
    other.kill()
    sup.step()
    assert (broken.starts, other.starts) == (0, 1)
    broken.fail = False
    sup.step()
    assert broken.starts == 0, "it waits before trying again"
    clock.now += 1.0
    sup.step()
    assert broken.starts == 1


def test_restart_counts_survive_a_new_supervisor(tmp_path: Path) -> None:
    f = Fake()
    sup, _ = supervised(tmp_path, resolver=f)
    sup.step()
    f.kill()
    sup.step()
    again = Supervisor(tmp_path, Plan([], kafka=False, postgres=False))
    again.watched = [Watched("resolver", lambda: f.is_alive, f.start)]
    again._load_counts()
    assert again.watched[0].restarts == 1


def test_the_plan_round_trips(tmp_path: Path) -> None:
    from deploy.processes import ProcessSpec

    plan = Plan([ProcessSpec("front", "services.front", ("--port", "1"))], kafka=True, postgres=False)
    plan.save(tmp_path)
    assert Plan.load(tmp_path) == plan
