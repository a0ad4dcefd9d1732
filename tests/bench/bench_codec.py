"""Codec throughput: encode + decode events/s for a mix of every event type, per CPU-second of
this process (process_time: other load on a shared machine does not count against it).

    python tests/bench/bench_codec.py [--seconds 3]

For reference it also times fastavro alone (schemaless write + read, no framing, no dataclasses).
"""

from __future__ import annotations

import argparse
import sys
import time
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fastavro import schemaless_reader, schemaless_writer  # noqa: E402

from events.catalog import EVENT_TYPES  # noqa: E402
from events.codec import Codec  # noqa: E402
from events.schema_registry import load_registry  # noqa: E402
from tests.unit.events.avro_samples import example_event  # noqa: E402


def _rate(fn, n_per_call: int, seconds: float) -> float:
    calls = 0
    started = time.process_time()
    while (elapsed := time.process_time() - started) < seconds:
        fn()
        calls += 1
    return calls * n_per_call / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    codec = Codec()
    mix = [example_event(name, seed) for seed in range(4) for name in sorted(EVENT_TYPES)]
    encoded = [codec.encode(e) for e in mix]
    assert [codec.decode(b) for b in encoded] == mix

    def roundtrip() -> None:
        for e in mix:
            codec.decode(codec.encode(e))

    def encode_only() -> None:
        for e in mix:
            codec.encode(e)

    def decode_only() -> None:
        for b in encoded:
            codec.decode(b)

    registry = load_registry()
    raw = [(registry.current(e.SCHEMA_NAME).parsed, e.to_avro()) for e in mix]

    def fastavro_alone() -> None:
        for parsed, datum in raw:
            buf = BytesIO()
            schemaless_writer(buf, parsed, datum)
            buf.seek(0)
            schemaless_reader(buf, parsed)

    # The same codec with the compiled encoders/decoders switched off: fastavro + to/from_avro.
    baseline = Codec()
    baseline._compiled_by_name.clear()
    baseline._compiled_by_fp.clear()

    by_type = {}
    for name in ("BatchCreated", "JobCreated", "JobAttemptCompleted", "InstanceHeartbeat"):
        event = example_event(name)
        by_type[name] = (_rate(lambda e=event: codec.decode(codec.encode(e)), 1, args.seconds / 4),
                         _rate(lambda e=event: baseline.decode(baseline.encode(e)), 1, args.seconds / 4))

    def baseline_roundtrip() -> None:
        for e in mix:
            baseline.decode(baseline.encode(e))

    print(f"codec encode+decode (mix of {len(EVENT_TYPES)} types): {_rate(roundtrip, len(mix), args.seconds):>10,.0f} events/s")
    print(f"codec encode only:                  {_rate(encode_only, len(mix), args.seconds):>10,.0f} events/s")
    print(f"codec decode only:                  {_rate(decode_only, len(mix), args.seconds):>10,.0f} events/s")
    print(f"fastavro path (compiled off, mix):  {_rate(baseline_roundtrip, len(mix), args.seconds):>10,.0f} events/s")
    print(f"fastavro alone write+read (mix):    {_rate(fastavro_alone, len(mix), args.seconds):>10,.0f} events/s")
    for name, (rate, base) in by_type.items():
        print(f"codec encode+decode {name:<20} {rate:>10,.0f} events/s (fastavro path {base:,.0f})")
    print(f"mean encoded size (mix): {sum(map(len, encoded)) / len(encoded):.0f} bytes")


if __name__ == "__main__":
    main()
