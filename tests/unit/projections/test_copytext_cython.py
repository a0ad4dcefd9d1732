"""The C formatter of COPY text (projections/readmodel/_copytext.pyx) gives exactly the bytes of the
Python formatter, whatever the values; it is used only when built from the source beside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.codec_cython import digest, pyx_digest
from projections.readmodel import copytext
from projections.readmodel.copytext import JsonMemo, rows_copy_bytes, rows_formatter

PYX = Path(copytext.__file__).with_name("_copytext.pyx")
COLUMNS = ("a", "b", "c", "d")
JSON = frozenset({"b"})

CELLS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True), st.text(alphabet=st.characters(blacklist_categories=("Cs",))),
    st.text(alphabet="\\\t\n\r ab\u00fc"), st.lists(st.integers(-(2**40), 2**40), max_size=4),
    st.tuples(st.integers(0, 9)),
)
JSON_CELLS = st.one_of(st.none(), st.dictionaries(st.text(max_size=5), st.one_of(st.integers(-(2**63), 2**63 - 1), st.text("\\\"ab"))))


@dataclass
class Row:
    a: object
    b: object
    c: object
    d: object


def formatter_in_c() -> object:
    if copytext._FORMAT_ROWS is None:
        pytest.fail("projections.readmodel._copytext is not built from the current .pyx: run `make venv` "
                    "(pip install -e . builds it; it needs a C compiler)")
    return copytext._FORMAT_ROWS


def test_the_pyx_digest_matches_its_source() -> None:
    text = PYX.read_text()
    body = text[:text.rindex("SOURCE_DIGEST = ")]
    assert pyx_digest(PYX) == digest(body), f"edit SOURCE_DIGEST in {PYX.name} to {digest(body)!r}"


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.fixed_dictionaries({"a": CELLS, "b": JSON_CELLS, "c": CELLS, "d": CELLS}), max_size=5))
def test_the_c_formatter_gives_the_python_bytes(rows: list[dict[str, object]]) -> None:
    formatter_in_c()
    expected = rows_formatter(COLUMNS, JSON)(rows).encode()
    assert rows_copy_bytes(COLUMNS, JSON)(rows) == expected
    assert rows_copy_bytes(COLUMNS, JSON)(rows, JsonMemo()) == expected
    assert rows_copy_bytes(COLUMNS, JSON, attributes=True)([Row(**r) for r in rows]) == expected
    assert rows_copy_bytes(COLUMNS, JSON, extension=False)(rows) == expected


def test_the_c_formatter_refuses_what_python_refuses() -> None:
    formatter_in_c()
    for rows, error in (([{"a": b"raw", "b": None, "c": 1, "d": 1}], TypeError),
                        ([{"a": 1, "b": None, "c": 1}], KeyError),
                        ([{"a": "\ud800", "b": None, "c": 1, "d": 1}], UnicodeEncodeError)):
        with pytest.raises(error):
            rows_formatter(COLUMNS, JSON)(rows).encode()
        with pytest.raises(error):
            rows_copy_bytes(COLUMNS, JSON)(rows)
