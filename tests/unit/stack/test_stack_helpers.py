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
