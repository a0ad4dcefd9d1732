"""Rows in PostgreSQL's COPY text format, built in one pass (several times faster than per-value
adaptation through psycopg's write_row, which dominated the sink's CPU time).

Format: one line per row, columns separated by tabs, NULL as \\N; backslash, tab, newline and
carriage return escaped with a backslash. Arrays of ints as {1,2}; JSON via orjson.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any

import orjson


def _escape(text: str) -> str:
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _int_array(values: Sequence[int]) -> str:
    return "{" + ",".join([str(int(v)) for v in values]) + "}"  # only int[] columns are copied


def _json_placeholder(value: object) -> str:
    return ""  # replaced by the JSON text: only JSON columns hold dicts


_CELL: dict[type, Callable[[Any], str]] = {
    type(None): lambda _: "\\N",
    str: _escape,
    int: str,
    bool: lambda v: "t" if v else "f",
    float: repr,
    list: _int_array,
    tuple: _int_array,
    dict: _json_placeholder,
}


def text_cell(value: Any, is_json: bool = False) -> str:
    if is_json and value is not None:
        return _escape(orjson.dumps(value).decode())
    try:
        return _CELL[type(value)](value)
    except KeyError:
        raise TypeError(f"no COPY text form for {type(value).__name__} {value!r}") from None


def copy_text(rows: Iterable[Sequence[Any]], json_columns: Sequence[bool]) -> str:
    """The COPY text of rows whose i-th column is JSON when json_columns[i]."""
    json_index = [i for i, is_json in enumerate(json_columns) if is_json]
    cell = _CELL
    lines = []
    try:
        for row in rows:
            cells = [cell[type(v)](v) for v in row]
            for i in json_index:
                if row[i] is not None:
                    cells[i] = _escape(orjson.dumps(row[i]).decode())
            lines.append("\t".join(cells))
    except KeyError as exc:
        raise TypeError(f"no COPY text form for values of type {exc}") from None
    return "\n".join(lines) + "\n" if lines else ""


def _json_text(value: Any) -> str:
    # orjson's compact output escapes every control character, so of the four characters COPY
    # text escapes only the backslash can occur (the same text _escape would give)
    return orjson.dumps(value).decode().replace("\\", "\\\\")


RowsFormatter = Callable[[Iterable[Any]], str]


@cache
def rows_formatter(columns: tuple[str, ...], json_columns: frozenset[str] = frozenset(),
                   attributes: bool = False) -> RowsFormatter:
    """A function giving the COPY text of rows, each a dict of at least `columns` (with `attributes`:
    an object with those attributes), those columns in that order: the same text as `copy_text`,
    several times faster. It is generated code with each cell inline: a str without special
    characters, an int and None are written without a call; other types go through the same cell
    functions as `copy_text` (so an unsupported type is still a TypeError)."""
    body = []
    cells = []
    for i, column in enumerate(columns):
        if not column.isidentifier():
            raise ValueError(f"column name {column!r} is not an identifier")
        v = f"v{i}"
        body.append(f"        {v} = r.{column}" if attributes else f"        {v} = r[{column!r}]")
        if column in json_columns:
            cells.append(f"('\\\\N' if {v} is None else _json({v}))")
        else:
            cells.append(
                f"({v} if type({v}) is str and not ('\\\\' in {v} or '\\t' in {v} or '\\n' in {v} or '\\r' in {v}) "
                f"else '\\\\N' if {v} is None else str({v}) if type({v}) is int else _cell({v}))")
    source = (
        "def format_rows(rows):\n"
        "    lines = []\n"
        "    append = lines.append\n"
        "    for r in rows:\n"
        + "\n".join(body) + "\n"
        + "        append('\\t'.join((" + ", ".join(cells) + ",)))\n"
        "    return '\\n'.join(lines) + '\\n' if lines else ''\n")
    namespace: dict[str, Any] = {"_json": _json_text, "_cell": _any_cell}
    exec(compile(source, f"<copy text of {', '.join(columns)}>", "exec"), namespace)  # noqa: S102
    formatter: RowsFormatter = namespace["format_rows"]
    return formatter


def _any_cell(value: Any) -> str:
    try:
        return _CELL[type(value)](value)
    except KeyError:
        raise TypeError(f"no COPY text form for values of type {type(value)}") from None
