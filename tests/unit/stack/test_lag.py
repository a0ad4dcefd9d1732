from projections.lag import lag_from


def test_lag_counts_unapplied_events_per_projection_including_partitions_never_stored() -> None:
    stored = {"readmodel": {("b", 0): 10, ("b", 1): 5}, "other": {("i", 0): 3}}
    ends = {("b", 0): 12, ("b", 1): 5, ("b", 2): 4, ("i", 0): 3}
    assert lag_from(stored, ends) == {"readmodel": 2 + 0 + 4, "other": 0}
