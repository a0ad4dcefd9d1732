"""`python -m projections.resolver` against the real Kafka broker, SIGKILLed in the middle of a batch.

The process is really killed (no goodbye to the group, offsets possibly uncommitted, derived
events possibly half appended); the restarted one must rebuild its partitions from the log and
finish the batch with nothing duplicated in effect.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from events.topics import Topics
from tests.unit.resolver.resolver_scenario import Scenario, assert_nothing_duplicated_in_effect

REPO = Path(__file__).resolve().parents[3]


class ResolverProcess:
    def __init__(self, bootstrap: str, topics: Topics, log_dir: Path) -> None:
        self.args = [sys.executable, "-m", "projections.resolver", "--bootstrap", bootstrap,
                     "--topic-prefix", topics.prefix, "--home", str(log_dir)]
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        out = open(self.log_dir / f"resolver-{self.starts}.log", "wb")  # noqa: SIM115  # kept by the child
        self.proc = subprocess.Popen(self.args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        out.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    async def restart(self) -> None:
        self.kill()
        await asyncio.sleep(0.05)
        self.start()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("resolver-*.log")))


@pytest.mark.kafka
@pytest.mark.slow
async def test_resolver_process_survives_sigkill_mid_batch(kafka_log, kafka_bootstrap, topics, tmp_path):
    resolver = ResolverProcess(kafka_bootstrap, topics, tmp_path)
    resolver.start()
    try:
        # a killed member holds its partitions until its session times out (6 s): allow for three
        scenario = Scenario(kafka_log, topics, resolver.restart, timeout_s=60)
        batch_log = await scenario.run()
        assignments = await scenario.assignments()
    except AssertionError:
        print(resolver.logs())
        raise
    finally:
        resolver.kill()
    assert_nothing_duplicated_in_effect(batch_log, assignments)
    assert resolver.starts == 4
    assert "rebuilt" in resolver.logs()
