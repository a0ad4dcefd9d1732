"""The real servers behind the shared fixtures answer, and each test's database is its own."""

from __future__ import annotations

import psycopg
import pytest

from deploy.postgres import database_url


@pytest.mark.postgres
def test_fresh_db_is_an_empty_database_of_its_own(fresh_db: str, pg_url: str) -> None:
    with psycopg.connect(fresh_db) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
        assert name.startswith("t_")
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
        assert tables == 0
        conn.execute("CREATE TABLE probe (x int)")
    assert database_url(pg_url, name) == fresh_db


@pytest.mark.kafka
async def test_kafka_log_talks_to_a_real_apache_kafka_broker(kafka_log) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_log.bootstrap)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    assert len(cluster["brokers"]) == 1  # a real KRaft broker answers DescribeCluster
