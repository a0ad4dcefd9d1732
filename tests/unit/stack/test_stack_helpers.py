from projections.lag import lag_from


def test_lag_counts_unapplied_events_per_projection_including_partitions_never_stored() -> None:
    stored = {"readmodel": {("b", 0): 10, ("b", 1): 5}, "other": {("i", 0): 3}}
    ends = {("b", 0): 12, ("b", 1): 5, ("b", 2): 4, ("i", 0): 3}
    assert lag_from(stored, ends) == {"readmodel": 2 + 0 + 4, "other": 0}


def test_kafka_cluster_ids_never_look_like_an_option() -> None:
    from deploy.kafka import new_cluster_id

    ids = [new_cluster_id() for _ in range(5000)]  # a leading '-' is 1 in 64 for a raw random id
    assert not any(i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids) and all(len(i) == 22 for i in ids)


def test_workers_are_told_the_control_plane_endpoints_their_jobs_must_not_reach(tmp_path) -> None:
    import shlex

    from deploy.stack import StackState, service_specs
    from worker.__main__ import build_parser

    state = StackState(home=str(tmp_path), api_url="http://127.0.0.1:5123", token="t", billing_project="b",
                       bootstrap="127.0.0.1:9092", database_url="postgresql://x", topic_prefix="p.", port=5123,
                       embedded_kafka=True, embedded_postgres=True,
                       extra={"job_firewall_block": '["10.0.0.7:4443"]'})
    autoscaler = next(s for s in service_specs(state) if s.name == "autoscaler")
    worker_args = shlex.split(autoscaler.args[autoscaler.args.index("--worker-args") + 1])
    parsed = build_parser().parse_args(["--instance-name", "w", "--cores", "1", "--memory-gib", "1",
                                        "--storage-gib", "1", *worker_args])
    assert parsed.job_firewall_block == ["http://127.0.0.1:5123", "10.0.0.7:4443"]
