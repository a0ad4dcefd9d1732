"""Hail's v2 query language: the parser's table of cases (from Hail's own tests) and its properties.

The table rows are the queries Hail's `test_list_batches_v2` and `test_list_jobs_v2` send, with the
terms they must parse to, and the queries those tests expect refused, with Hail's wording.
"""

from __future__ import annotations

import string
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.front.query_v2 import (
    BATCH_STATES,
    JOB_STATES,
    MAX_TERMS,
    AttributeCompare,
    CostCompare,
    DurationCompare,
    ExitCodeCompare,
    IdCompare,
    Op,
    QueryError,
    StateIs,
    TextCompare,
    TextMatch,
    TimeCompare,
    parse,
    render,
)
from services.front.query_v2_sql import batch_condition, job_condition, like_pattern

T_2023 = 1677258925000  # 2023-02-24T17:15:25Z
T_3000 = int(datetime(3000, 2, 24, 17, 15, 25, tzinfo=UTC).timestamp()) * 1000


def terms(q: str, listing: str = "jobs") -> tuple:
    return parse(q, listing).terms  # type: ignore[arg-type]


# --- what Hail's tests send, and what it means ---------------------------------------------------

@pytest.mark.parametrize(("q", "expected"), [
    ("tag=abc", AttributeCompare("tag", Op.EQ, "abc")),
    ("tag=~abc", AttributeCompare("tag", Op.LIKE, "abc")),
    ("name!~b2", AttributeCompare("name", Op.NOT_LIKE, "b2")),
    ("name!=b2", AttributeCompare("name", Op.NE, "b2")),
    ("tag = abc", AttributeCompare("tag", Op.EQ, "abc")),
    ("xyz-b2", TextMatch("xyz-b2", exact=False)),
    ('"b2"', TextMatch("b2", exact=True)),
    ("state != complete", StateIs("complete", Op.NE)),
    ("state=complete", StateIs("complete", Op.EQ)),
    ("state == success", StateIs("success", Op.EQ)),
    ("user != foo", TextCompare("user", Op.NE, "foo")),
    ("billing_project = test", TextCompare("billing_project", Op.EQ, "test")),
    ("start_time >= 2023-02-24T17:15:25Z", TimeCompare("start_time", Op.GE, T_2023)),
    ("end_time < 3000-02-24T17:15:25Z", TimeCompare("end_time", Op.LT, T_3000)),
    ("end_time == 2023-02-24T17:15:25Z", TimeCompare("end_time", Op.EQ, T_2023)),
    ("duration > 50000", DurationCompare(Op.GT, 50_000_000)),
    ("cost > 1000", CostCompare(Op.GT, 1000.0)),
    ("batch_id = 17", IdCompare("batch_id", Op.EQ, 17)),
    ("batch_id == 17", IdCompare("batch_id", Op.EQ, 17)),
])
def test_hails_batch_queries(q, expected):
    assert terms(q, "batches") == (expected,)


@pytest.mark.parametrize(("q", "expected"), [
    ("state = success", StateIs("success", Op.EQ)),
    ("state==success", StateIs("success", Op.EQ)),
    ("state=done", StateIs("done", Op.EQ)),
    ("state != done", StateIs("done", Op.NE)),
    ("tag =~ fo", AttributeCompare("tag", Op.LIKE, "fo")),
    ("tag != foo", AttributeCompare("tag", Op.NE, "foo")),
    ('"tag"', TextMatch("tag", exact=True)),
    ("foo", TextMatch("foo", exact=False)),
    ("instance_collection = standard", TextCompare("instance_collection", Op.EQ, "standard")),
    ("start_time<2023-02-24T17:15:25Z", TimeCompare("start_time", Op.LT, T_2023)),
    ("start_time<=2023-02-24T17:15:25Z", TimeCompare("start_time", Op.LE, T_2023)),
    ("start_time != 2023-02-24T17:15:25Z", TimeCompare("start_time", Op.NE, T_2023)),
    ("start_time>2023-02-24T17:15:25Z", TimeCompare("start_time", Op.GT, T_2023)),
    ("instance = batch-worker", TextCompare("instance", Op.EQ, "batch-worker")),
    ("instance!~batch-worker", TextCompare("instance", Op.NOT_LIKE, "batch-worker")),
    ("job_id >= 1", IdCompare("job_id", Op.GE, 1)),
    ("exit_code = NULL", ExitCodeCompare(Op.EQ, None)),
    ("exit_code != null", ExitCodeCompare(Op.NE, None)),
    ("exit_code > 0", ExitCodeCompare(Op.GT, 0)),
    ("cost >= $0.01", CostCompare(Op.GE, 0.01)),
])
def test_hails_job_queries(q, expected):
    assert terms(q) == (expected,)


def test_terms_are_lines_and_all_hold():
    q = "\njob_id >=1\ninstance == foo\nfoo = bar\nstart_time >= 2023-02-24T17:15:25Z\nend_time <= 2023-02-24T17:18:25Z\n"
    assert terms(q) == (IdCompare("job_id", Op.GE, 1), TextCompare("instance", Op.EQ, "foo"),
                        AttributeCompare("foo", Op.EQ, "bar"), TimeCompare("start_time", Op.GE, T_2023),
                        TimeCompare("end_time", Op.LE, T_2023 + 180_000))


def test_the_examples_of_the_issue():
    assert terms('state = failed\nname == "x"\nduration > 60\ncost >= 0.01\nstart_time >= 2026-01-01T00:00:00Z\n'
                 "instance_collection =~ high") == (
        StateIs("failed", Op.EQ), AttributeCompare("name", Op.EQ, "x"), DurationCompare(Op.GT, 60_000),
        CostCompare(Op.GE, 0.01), TimeCompare("start_time", Op.GE, 1767225600000),
        TextCompare("instance_collection", Op.LIKE, "high"))


@pytest.mark.parametrize(("q", "listing", "message"), [
    ("batch_id >= 1 abcde", "batches", "could not parse term"),
    ("job_id >= 1 abcde", "jobs", "could not parse term"),
    ("duration >= abcd", "batches", "expected float, but found"),
    ("batch_id >= abcd", "batches", "expected int, but found"),
    ("job_id >= abcd", "jobs", "expected int, but found"),
    ("cost >= abcd", "jobs", "expected float, but found"),
    ("state >= 1", "batches", "unexpected operator"),
    ("state = 1", "batches", "unknown state"),
    ("state = 1", "jobs", "unknown state"),
    ("user >= 1", "batches", "unexpected operator"),
    ("billing_project >= 1", "batches", "unexpected operator"),
    ("instance_collection >= 1", "jobs", "unexpected operator"),
    ("instance >= 1", "jobs", "unexpected operator"),
    ("start_time >= 1", "jobs", "expected date, but found"),
    ("end_time >= 1", "batches", "expected date, but found"),
    ("exit_code > NULL", "jobs", "unexpected operator"),
    ("name > x", "jobs", "unexpected operator"),
    ("state = failure", "jobs", "unknown state"),   # a batch state is not a job state
    ("state = bad", "batches", "unknown state"),
    ('"', "jobs", "quoted exact match"),
    ('"x', "jobs", "quoted exact match"),
    ('x"', "jobs", "must not end with"),
    ("two words", "jobs", "could not parse term"),
    ("= x", "jobs", "could not parse term"),
    ("state =", "jobs", "could not parse term"),
])
def test_refused_queries_say_why_with_hails_words(q, listing, message):
    with pytest.raises(QueryError, match=message):
        parse(q, listing)


def test_an_error_names_the_line_and_the_term():
    with pytest.raises(QueryError) as err:
        parse("state = failed\n\n  duration > soon  \n", "jobs")
    assert err.value.line == 3 and err.value.term == "duration > soon"
    assert str(err.value).startswith("line 3: 'duration > soon': expected float, but found soon")


@pytest.mark.parametrize("q", [
    "job_id = ١٢", "job_id = １２", "duration > ٣", "cost > nan", "cost > inf", "duration > 1_0",
    "cost > 1e999", "job_id = 99999999999", "batch_id = 99999999999999999999", "exit_code = 0x1",
    "start_time > ٢٠٢٦-01-01", "start_time > 2026-13-01",
])
def test_numbers_and_times_are_ascii_and_in_range(q):
    listing = "batches" if q.startswith("batch_id") else "jobs"
    with pytest.raises(QueryError, match="expected (int|float|date), but found"):
        parse(q, listing)


@pytest.mark.parametrize("q", ["name = a\x00b", "a\x00", "name = \ud800"])
def test_text_postgres_cannot_hold_is_refused(q):
    with pytest.raises(QueryError, match="NUL|surrogate"):
        parse(q, "jobs")


def test_limits():
    with pytest.raises(QueryError, match="at most"):
        parse("\n".join(["x"] * (MAX_TERMS + 1)), "jobs")
    with pytest.raises(QueryError, match="characters long"):
        parse("x" * 10_001, "jobs")


def test_squalls_extensions_to_hails_grammar():
    assert terms("") == () and terms("\n \n\t") == ()          # blank lines are skipped
    assert terms("name = a<b") == (AttributeCompare("name", Op.EQ, "a<b"),)  # split at the first operator
    assert terms('name = "two words"') == (AttributeCompare("name", Op.EQ, "two words"),)
    assert terms('name = "a = b"') == (AttributeCompare("name", Op.EQ, "a = b"),)
    assert terms("start_time > 2026-01-01") == (TimeCompare("start_time", Op.GT, 1767225600000),)  # UTC
    assert terms("start_time > 2026-01-01T01:00:00+01:00") == (TimeCompare("start_time", Op.GT, 1767225600000),)
    assert terms("job_id = 3\r\n") == (IdCompare("job_id", Op.EQ, 3),)


# --- properties ------------------------------------------------------------------------------------

_OPERATOR_CHARS = set("=!~<>")
_word = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="".join(_OPERATOR_CHARS) + '"\n\x00'),
                min_size=1, max_size=12).filter(lambda w: len(w.split()) == 1 and w.strip() == w)
_key = _word.filter(lambda w: w not in {"state", "job_id", "batch_id", "exit_code", "start_time", "end_time",
                                        "duration", "cost", "instance", "instance_collection", "user",
                                        "billing_project"})
_value = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n\r\x00"), max_size=12).filter(
    lambda v: v.count('"') == 0 or len(v.split()) == 1)
_ms = st.integers(min_value=-(10**13), max_value=10**14)


def _ops(*allowed: Op):
    return st.sampled_from(allowed)


_exact = _ops(Op.EQ, Op.NE)
_match = _ops(Op.EQ, Op.NE, Op.LIKE, Op.NOT_LIKE)
_compare = _ops(Op.EQ, Op.NE, Op.GT, Op.GE, Op.LT, Op.LE)
_common = [
    st.builds(TextMatch, _word, st.booleans()).filter(lambda t: not t.exact or len(t.text) >= 1),
    st.builds(TimeCompare, st.sampled_from(["start_time", "end_time"]), _compare, _ms),
    st.builds(DurationCompare, _compare, _ms),
    st.builds(CostCompare, _compare, st.floats(allow_nan=False, allow_infinity=False, width=64)),
    st.builds(AttributeCompare, _key, _match, _value),
]
_job_term = st.one_of(*_common,
                      st.builds(StateIs, st.sampled_from(sorted(JOB_STATES)), _exact),
                      st.builds(IdCompare, st.just("job_id"), _compare, st.integers(0, 2**31 - 1)),
                      st.builds(ExitCodeCompare, _compare, st.integers(-(2**31), 2**31 - 1)),
                      st.builds(ExitCodeCompare, _exact, st.none()),
                      st.builds(TextCompare, st.sampled_from(["instance", "instance_collection"]), _match, _value))
_batch_term = st.one_of(*_common,
                        st.builds(StateIs, st.sampled_from(BATCH_STATES), _exact),
                        st.builds(IdCompare, st.just("batch_id"), _compare, st.integers(1, 2**63 - 1)),
                        st.builds(TextCompare, st.sampled_from(["user", "billing_project"]), _exact, _value))


@given(st.lists(_job_term, max_size=8))
def test_printed_job_queries_parse_back_to_the_same_terms(ts):
    assert terms("\n".join(render(t) for t in ts)) == tuple(ts)


@given(st.lists(_batch_term, max_size=8))
def test_printed_batch_queries_parse_back_to_the_same_terms(ts):
    assert terms("\n".join(render(t) for t in ts), "batches") == tuple(ts)


@given(_key, st.sampled_from(["=", "==", "!=", "=~", "!~"]), _word, st.sampled_from(["", " ", "  ", "\t"]))
def test_spaces_around_the_operator_do_not_matter(key, op, value, space):
    assert terms(f"{key}{space}{op}{space}{value}") == terms(f"{key} {op} {value}")


@given(st.text(max_size=200))
def test_any_text_parses_or_is_a_query_error(q):
    for listing in ("batches", "jobs"):
        try:
            query = parse(q, listing)  # type: ignore[arg-type]
        except QueryError as exc:
            assert exc.message
        else:
            compile_ = batch_condition if listing == "batches" else job_condition
            compile_(query)


@given(st.lists(_job_term, min_size=1, max_size=6), st.text(alphabet=string.ascii_letters, min_size=16, max_size=16))
def test_no_value_ever_reaches_the_sql_text(ts, marker):
    """Every value is a bound parameter: a marker put into any value shows up only in the params."""
    marked = [AttributeCompare(f"k{marker}", Op.EQ, f"v{marker}"), TextMatch(f"w{marker}", exact=False),
              TextCompare("instance", Op.LIKE, marker), *ts]
    cond = job_condition(parse("\n".join(render(t) for t in marked), "jobs"))
    assert marker not in cond.where()
    assert any(marker in str(v) for v in cond.params.values())


@given(st.text(max_size=30))
def test_like_patterns_take_wildcards_literally(text):
    pattern = like_pattern(text)
    assert pattern.startswith("%") and pattern.endswith("%")
    inner = pattern[1:-1]
    unescaped, i = [], 0
    while i < len(inner):  # every %, _ and \ of the text is escaped, and nothing else is
        if inner[i] == "\\":
            assert inner[i + 1] in "%_\\"
            unescaped.append(inner[i + 1])
            i += 2
        else:
            assert inner[i] not in "%_"
            unescaped.append(inner[i])
            i += 1
    assert "".join(unescaped) == text
