"""`squall replay`, `squall audit`, `squall quarantine list`: rebuild, verify and inspect projections.

Each command finds Kafka and PostgreSQL from --bootstrap/--database-url/--topic-prefix (or
SQUALL_KAFKA_BOOTSTRAP / SQUALL_DATABASE_URL / SQUALL_TOPIC_PREFIX), else from the local stack
started by `squall up` in --home.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import typer

from events.process.config import ConfigError, ServiceConfig, default_home, from_args
from services.cli import app

BootstrapOption = typer.Option(None, "--bootstrap", envvar="SQUALL_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers")
DatabaseOption = typer.Option(None, "--database-url", envvar="SQUALL_DATABASE_URL", help="postgresql:// URL")
PrefixOption = typer.Option(None, "--topic-prefix", envvar="SQUALL_TOPIC_PREFIX", help="topic prefix")
HomeOption = typer.Option(None, "--home", help="state directory of `squall up` (default $SQUALL_HOME or ~/.squall)")
CredentialsOption = typer.Option(None, "--kafka-credentials", envvar="SQUALL_KAFKA_CREDENTIALS",
                                 help="Kafka credentials file (default: the local stack's administrator)")

quarantine_app = typer.Typer(no_args_is_help=True, help="Events a projection could not decode or apply.")
app.add_typer(quarantine_app, name="quarantine")


def _config(bootstrap: str | None, database_url: str | None, topic_prefix: str | None,
            home: Path | None, kafka_credentials: Path | None = None) -> ServiceConfig:
    home = (home or default_home()).expanduser()
    if not (bootstrap and database_url):
        from deploy.stack import StackState

        state = StackState.load(home)
        if state is not None:
            bootstrap = bootstrap or state.bootstrap
            database_url = database_url or state.database_url
            topic_prefix = topic_prefix or state.topic_prefix
            # the operator's tools read the whole log: as the stack's administrator
            admin = state.credentials_file("admin")
            kafka_credentials = kafka_credentials or (Path(admin) if admin else None)
    args = argparse.Namespace(bootstrap=bootstrap, database_url=database_url, kafka_credentials=kafka_credentials,
                              topic_prefix=topic_prefix or "squall.", home=str(home))
    try:
        return from_args(args)
    except ConfigError as exc:
        typer.echo(f"error: {exc} (or start the local stack with `squall up`)", err=True)
        raise typer.Exit(2) from exc


def _database_url(database_url: str | None, home: Path | None) -> str:
    """The database alone (commands that do not read the log)."""
    if database_url:
        return database_url
    from deploy.stack import StackState

    state = StackState.load((home or default_home()).expanduser())
    if state is None:
        typer.echo("error: PostgreSQL is not configured: pass --database-url postgresql://... or set "
                   "SQUALL_DATABASE_URL (or start the local stack with `squall up`)", err=True)
        raise typer.Exit(2)
    return state.database_url


@app.command()
def replay(
    projection: str | None = typer.Option(None, "--projection", help="the projection to rebuild (readmodel)"),
    all_: bool = typer.Option(False, "--all", help="rebuild every projection (the default)"),
    schema: str = typer.Option("replay_readmodel", "--schema", help="scratch schema to rebuild into (dropped first)"),
    verify: bool = typer.Option(False, "--verify", help="compare the rebuilt tables with the live ones, row for row"),
    live_schema: str = typer.Option("public", "--live-schema", help="schema of the live read models"),
    prices: Path | None = typer.Option(None, "--prices", help="YAML price table the live projector uses"),
    max_differences: int = typer.Option(100, "--max-differences"),
    processes: int = typer.Option(1, "--processes", min=1, help="projector processes sharing the partitions"),
    in_place: bool = typer.Option(False, "--in-place", help="empty the LIVE read models and rebuild them there "
                                  "(after a projection code change; the API shows partial data meanwhile)"),
    bootstrap: str | None = BootstrapOption, database_url: str | None = DatabaseOption,
    topic_prefix: str | None = PrefixOption, home: Path | None = HomeOption,
    kafka_credentials: Path | None = CredentialsOption,
) -> None:
    """Rebuild projections from offset 0 into a fresh schema; with --verify, exit 1 on any difference."""
    from projections.cost import PriceTable
    from projections.replay import PROJECTIONS

    if projection is not None and all_:
        raise typer.BadParameter("give --projection NAME or --all, not both")
    if projection is not None and projection not in PROJECTIONS:
        raise typer.BadParameter(f"unknown projection {projection!r}; known: {', '.join(PROJECTIONS)}")
    config = _config(bootstrap, database_url, topic_prefix, home, kafka_credentials)
    price_table = PriceTable.from_yaml(prices) if prices else PriceTable()
    if in_place:
        if verify:
            raise typer.BadParameter("--in-place rebuilds the live tables: there is nothing to --verify against")
        from projections.replay import reset

        reset(config.database_url, live_schema)
        typer.echo(f"emptied the read models of schema {live_schema}; rebuilding from offset 0")
        schema = live_schema
    result = asyncio.run(_replay(config, schema, verify, live_schema, price_table, max_differences, in_place,
                                 processes))
    rate = result.events / result.seconds if result.seconds > 0 else 0.0
    mode = "rebuild mode" if result.mode == "bulk" else "live projection"
    typer.echo(f"rebuilt readmodel into schema {result.schema} ({mode}): {result.events} events in "
               f"{result.seconds:.1f} s ({rate:,.0f} events/s)")
    if not verify:
        return
    for difference in result.differences:
        typer.echo(str(difference))
    if result.differences:
        more = " (first ones shown)" if len(result.differences) >= max_differences else ""
        typer.echo(f"{len(result.differences)} difference(s){more} between {live_schema} and {schema}")
        raise typer.Exit(1)
    typer.echo(f"no differences: {result.rows_compared} rows compared ({live_schema} vs {schema})")
    if result.front_checked:
        typer.echo("the front's tables hold every batch, update, job group and job of the log")


async def _replay(config: ServiceConfig, schema: str, verify: bool, live_schema: str, prices,  # type: ignore[no-untyped-def]
                  max_differences: int, in_place: bool, processes: int):
    from events.kafka_log import KafkaEventLog
    from projections.replay import rebuild, replay_and_verify
    from projections.runner import tune_gc_for_batches

    tune_gc_for_batches()
    log = await KafkaEventLog.connect(config.bootstrap_servers, client_id="squall-replay",
                                      security=config.kafka_security)
    try:
        if in_place:
            return await rebuild(log, config.topics, config.database_url, schema, prices=prices, in_place=True,
                                 processes=processes)
        if verify:
            return await replay_and_verify(log, config.topics, config.database_url, live_schema, schema, prices,
                                           max_differences=max_differences, processes=processes)
        return await rebuild(log, config.topics, config.database_url, schema, prices=prices, processes=processes)
    finally:
        await log.close()


@app.command()
def audit(
    batch_id: int | None = typer.Argument(None, help="batch id"),
    job_id: int | None = typer.Argument(None, help="job id (default: every event of the batch)"),
    at: str | None = typer.Option(None, "--at", help="as-of view: a log offset, a time in ms, or an ISO time"),
    details: bool = typer.Option(True, "--details/--no-details",
                                 help="read the events back from the log and say what each decision was"),
    pool: str | None = typer.Option(None, "--pool", help="instead of a batch: a pool's autoscaler decisions "
                                    "(what it requested, deleted, and why) and its instances"),
    limit: int = typer.Option(50, "--limit", help="--pool: the newest decisions, at most this many"),
    schema: str = typer.Option("public", "--schema", help="schema of the read models"),
    bootstrap: str | None = BootstrapOption, database_url: str | None = DatabaseOption,
    topic_prefix: str | None = PrefixOption, home: Path | None = HomeOption,
    kafka_credentials: Path | None = CredentialsOption,
) -> None:
    """Print a batch's (or job's) event history with offsets, causes and timestamps; --at adds an as-of view.
    With --pool, the autoscaler's decisions for that pool instead."""
    from projections.audit import history, iso, parse_as_of
    from projections.db import connect

    if pool is not None:
        if batch_id is not None:
            raise typer.BadParameter("give a batch id or --pool, not both")
        with connect(_database_url(database_url, home), schema=schema) as conn:
            _print_pool_audit(conn, pool, limit)
        return
    if batch_id is None:
        raise typer.BadParameter("give a batch id (and optionally a job id), or --pool NAME")
    try:
        as_of = parse_as_of(at) if at is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    config = _config(bootstrap, database_url, topic_prefix, home, kafka_credentials)
    with connect(config.database_url, schema=schema) as conn:
        entries = history(conn, batch_id, job_id)
        if not entries:
            typer.echo(f"no events for batch {batch_id}" + (f" job {job_id}" if job_id else ""), err=True)
            raise typer.Exit(1)
        shown = [e for e in entries if as_of is None or as_of.includes(e)]
        words = _decision_words(config, shown) if details else {}
        typer.echo(f"{'POSITION':<28} {'OCCURRED_AT':<25} {'EVENT':<22} {'JOB':>6} {'ATTEMPT':<12} "
                   f"{'EVENT_ID':<26} {'CAUSE':<26} PRODUCER")
        for e in shown:
            typer.echo(f"{e.topic.rsplit('.', 1)[-1] + f'[{e.partition}]@{e.offset}':<28} {iso(e.occurred_at):<25} "
                       f"{e.event_type:<22} {e.job_id if e.job_id is not None else '-':>6} "
                       f"{e.attempt_id or '-':<12} {e.event_id:<26} {e.causation_id or '-':<26} {e.producer}")
            said = words.get((e.topic, e.partition, e.offset, e.job_id))
            if said:
                typer.echo(f"    -> {said}")
        typer.echo(f"{len(shown)} event(s)" + (f" of {len(entries)} up to --at {at}" if as_of else ""))
        if as_of is not None:
            asyncio.run(_print_as_of(config, conn, batch_id, job_id, as_of, at or ""))


def _decision_words(config: ServiceConfig, entries: list[Any]) -> dict[tuple[Any, ...], str]:
    """What each decision among `entries` said (projections.audit.DecisionWords), read back from the log;
    nothing (and a note) when the log cannot be read."""
    from events.kafka_log import KafkaEventLog
    from projections.audit import DecisionWords, read_events

    async def read() -> dict[tuple[str, int, int], Any]:
        log = await KafkaEventLog.connect(config.bootstrap_servers, client_id="squall-audit",
                                          security=config.kafka_security)
        try:
            return await read_events(log, entries)
        finally:
            await log.close()

    try:
        events = asyncio.run(read())
    except Exception as exc:  # the index still prints: say why the details are missing
        typer.echo(f"(no decision details: reading the log failed: {exc}; --no-details skips them)", err=True)
        return {}
    words = DecisionWords()
    out: dict[tuple[Any, ...], str] = {}
    for e in entries:
        event = events.get((e.topic, e.partition, e.offset))
        said = words(event) if event is not None else None
        if said:
            out[(e.topic, e.partition, e.offset, e.job_id)] = said
    return out


async def _print_as_of(config: ServiceConfig, conn, batch_id: int, job_id: int | None, as_of, at: str) -> None:  # type: ignore[no-untyped-def]
    from events.kafka_log import KafkaEventLog
    from projections.audit import as_of as fold_as_of
    from projections.audit import iso

    log = await KafkaEventLog.connect(config.bootstrap_servers, client_id="squall-audit",
                                      security=config.kafka_security)
    try:
        model, _ = await fold_as_of(log, conn, batch_id, as_of)
    finally:
        await log.close()
    batch = model.rows["batches"].get((batch_id,))
    typer.echo(f"\nas of {at}:")
    if batch is None:
        typer.echo(f"  batch {batch_id} did not exist yet")
        return
    typer.echo(f"  batch {batch_id}: state={batch['state']} cancelled={batch['cancelled']} n_jobs={batch['n_jobs']} "
               f"completed={batch['n_completed']} succeeded={batch['n_succeeded']} failed={batch['n_failed']} "
               f"cancelled_jobs={batch['n_cancelled']} msec_mcpu={batch['msec_mcpu']} cost={batch['cost']:.6f}")
    jobs = sorted((k[1], row) for k, row in model.rows["jobs"].items() if job_id is None or k[1] == job_id)
    for jid, row in jobs:
        typer.echo(f"  job {jid:>6}: {row['state']:<9} attempts={row['n_attempts']} attempt={row['current_attempt_id']} "
                   f"exit_code={row['exit_code']} start={iso(row['start_time'])} end={iso(row['end_time'])}")


def _print_pool_audit(conn, pool: str, limit: int) -> None:  # type: ignore[no-untyped-def]
    from events.core.autoscale_explain import describe_pool_decision, zone_summary
    from projections.audit import iso

    rows = conn.execute('SELECT topic, "partition", "offset", occurred_at, producer, decision FROM pool_decisions '
                        'WHERE pool = %s ORDER BY occurred_at DESC, "offset" DESC LIMIT %s', (pool, limit)).fetchall()
    instances = conn.execute("SELECT name, state, cores_mcpu, zone, standing, reason, time_requested FROM instances "
                             "WHERE pool = %s ORDER BY time_requested NULLS LAST, name", (pool,)).fetchall()
    if not rows and not instances:
        typer.echo(f"no decisions and no instances for pool {pool!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"pool {pool}: {len(rows)} decision(s), newest first")
    for topic, partition, offset, occurred_at, producer, decision in rows:
        typer.echo(f"{iso(occurred_at)}  {topic.rsplit('.', 1)[-1]}[{partition}]@{offset}  {producer}")
        typer.echo(f"    {describe_pool_decision(decision)}")
        for choice in decision.get("instances", ()):
            typer.echo(f"    -> {choice['instance_name']}" + (f" in {choice['zone']}" if choice.get("zone") else "")
                       + (" (standing)" if choice.get("standing") else ""))
        if decision.get("zones"):
            typer.echo(f"    zones: {zone_summary(decision)}")
    typer.echo(f"\n{'INSTANCE':<34} {'STATE':<9} {'CORES':>5} {'ZONE':<16} {'STANDING':<8} {'REQUESTED':<25} REASON")
    for name, state, cores, zone, standing, reason, requested in instances:
        typer.echo(f"{name:<34} {state:<9} {(cores or 0) // 1000:>5} {zone or '-':<16} {'yes' if standing else 'no':<8} "
                   f"{iso(requested):<25} {reason or '-'}")


@quarantine_app.command("list")
def quarantine_list(
    limit: int = typer.Option(50, "--limit", help="newest first, at most this many"),
    schema: str = typer.Option("public", "--schema", help="schema of the read models"),
    database_url: str | None = DatabaseOption, home: Path | None = HomeOption,
) -> None:
    """List the events projections quarantined (could not decode or apply), with the reason."""
    from projections.audit import iso
    from projections.db import connect

    with connect(_database_url(database_url, home), schema=schema) as conn:
        total = conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]  # type: ignore[index]
        rows = conn.execute('SELECT topic, partition, "offset", projection, event_type, reason, quarantined_at, '
                            'length(raw) FROM quarantine ORDER BY quarantined_at DESC, topic, partition, "offset" '
                            "LIMIT %s", (limit,)).fetchall()
    if not rows:
        typer.echo("nothing quarantined")
        return
    for topic, partition, offset, projection, event_type, reason, at, size in rows:
        typer.echo(f"{topic}[{partition}]@{offset}  {iso(at)}  {projection}  {event_type or '?'}  "
                   f"{size} bytes  {reason}")
    typer.echo(f"{total} quarantined in all" + (f", newest {len(rows)} shown" if total > len(rows) else ""))
