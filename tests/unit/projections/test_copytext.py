"""COPY text encoding of read-model rows."""

from __future__ import annotations

import pytest

from projections.readmodel.copytext import copy_text, rows_formatter, text_cell


def test_cells() -> None:
    assert text_cell(None) == "\\N" and text_cell(None, is_json=True) == "\\N"
    assert text_cell(True) == "t" and text_cell(False) == "f"
    assert text_cell(12) == "12" and text_cell(0.1) == "0.1"
    assert text_cell([3, 1]) == "{3,1}"
    assert text_cell("a\tb\nc\\d\re") == "a\\tb\\nc\\\\d\\re"
    assert text_cell({"k": "x\\y", "n": 1.5}, is_json=True) == '{"k":"x\\\\\\\\y","n":1.5}'


def test_rows_end_with_a_newline_and_json_columns_are_encoded() -> None:
    text = copy_text([(1, {"a": 1}, None), (2, None, "s")], [False, True, False])
    assert text == '1\t{"a":1}\t\\N\n2\t\\N\ts\n'
    assert copy_text([], [False]) == ""


def test_an_unsupported_value_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="bytes"):
        copy_text([(b"raw",)], [False])


def test_rows_formatter_gives_the_same_text_as_copy_text() -> None:
    from dataclasses import dataclass

    columns = ("a", "b", "c", "d")
    rows = [{"a": 1, "b": {"k": "x\\y\t\n"}, "c": None, "d": "s\tx\\y\r\nz"},
            {"a": True, "b": None, "c": 1.5, "d": [1, 2]},
            {"a": "plain", "b": [1, 2], "c": -3, "d": ""},
            {"a": False, "b": "text", "c": (4,), "d": "ünï"}]
    expected = copy_text([[r[c] for c in columns] for r in rows], [False, True, False, False])
    assert rows_formatter(columns, frozenset({"b"}))(rows) == expected
    assert rows_formatter(columns, frozenset({"b"}))([]) == ""

    @dataclass
    class Row:
        a: object
        b: object
        c: object
        d: object

    assert rows_formatter(columns, frozenset({"b"}), attributes=True)([Row(**r) for r in rows]) == expected
    with pytest.raises(TypeError, match="bytes"):
        rows_formatter(columns)([{"a": b"raw", "b": 1, "c": 1, "d": 1}])


def test_a_json_memo_writes_a_shared_document_once_and_the_same_text() -> None:
    from projections.readmodel.copytext import JsonMemo

    status = {"state": "succeeded", "error": "a\\b"}
    rows = [{"k": 1, "status": status}, {"k": 2, "status": status}, {"k": 3, "status": {"x": 1}}]
    formatter = rows_formatter(("k", "status"), frozenset({"status"}))
    assert formatter(rows, JsonMemo()) == formatter(rows) == copy_text(
        [[r["k"], r["status"]] for r in rows], [False, True])


def test_key_arrays_are_sent_as_array_literals() -> None:
    from projections.readmodel.sink import _array_literal

    assert _array_literal([1, 22, None], text=False) == "{1,22,NULL}"
    assert _array_literal(["a", 'b"c', "d\\e", "", "{x, y}", None], text=True) == (
        '{"a","b\\"c","d\\\\e","","{x, y}",NULL}')
