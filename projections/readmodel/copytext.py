"""Rows in PostgreSQL's COPY text format, built in one pass (several times faster than per-value
adaptation through psycopg's write_row, which dominated the sink's CPU time).

Format: one line per row, columns separated by tabs, NULL as \\N; backslash, tab, newline and
carriage return escaped with a backslash. Arrays of ints as {1,2}; JSON via orjson.

`rows_copy_bytes` gives the same text as UTF-8 bytes, formatted in C by the optional Cython
extension `_copytext.pyx` when it is built from the source beside this module, otherwise by
`rows_formatter` and encoded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

import orjson

from events.codec_cython import pyx_digest


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


RowsFormatter = Callable[..., str]  # (rows, json_memo=None) -> str


class JsonMemo:
    """The JSON text of objects already written, by identity: a worker status document is both the
    job's and its attempt's `status`, the same dict. Use one memo for one write, while nothing
    changes the objects (it holds them, so an id is not reused)."""

    def __init__(self) -> None:
        self._texts: dict[int, tuple[Any, str]] = {}

    def __call__(self, value: Any) -> str:
        held = self._texts.get(id(value))
        if held is not None and held[0] is value:
            return held[1]
        text = _json_text(value)
        self._texts[id(value)] = (value, text)
        return text

# The generic cell, inline: a str without special characters, None and an int without a call,
# anything else through the cell functions of copy_text. `{v}` is the cell's variable.
_GENERIC = ("({v} if type({v}) is str and not ('\\\\' in {v} or '\\t' in {v} or '\\n' in {v} or '\\r' in {v}) "
            "else '\\\\N' if {v} is None else str({v}) if type({v}) is int else _cell({v}))")
# The same cell with the check for the type the column's first row holds put first.
_FIRST: dict[type, str] = {
    int: "(str({v}) if type({v}) is int else " + _GENERIC + ")",
    type(None): "('\\\\N' if {v} is None else " + _GENERIC + ")",
    bool: "(('t' if {v} else 'f') if type({v}) is bool else " + _GENERIC + ")",
    float: "(repr({v}) if type({v}) is float else " + _GENERIC + ")",
}


def rows_formatter(columns: tuple[str, ...], json_columns: frozenset[str] = frozenset(),
                   attributes: bool = False) -> RowsFormatter:
    """A function giving the COPY text of rows, each a dict of at least `columns` (with `attributes`:
    an object with those attributes), those columns in that order: the same text as `copy_text`,
    several times faster. It runs code generated for the columns and the types of the first row's
    values, with each cell inline (see _GENERIC): whatever the types, the text is copy_text's (and an
    unsupported type is still a TypeError). With `json_memo`, JSON cells go through it."""
    for column in columns:
        if not column.isidentifier():
            raise ValueError(f"column name {column!r} is not an identifier")

    def format_rows(rows: Sequence[Any], json_memo: JsonMemo | None = None) -> str:
        if not rows:
            return ""
        first = rows[0]
        if attributes:
            kinds = tuple(type(getattr(first, c)) for c in columns)
        else:
            kinds = tuple(type(first[c]) for c in columns)
        return _compiled(columns, json_columns, attributes, kinds)(rows, json_memo or _json_text)

    return format_rows


@lru_cache(maxsize=512)
def _compiled(columns: tuple[str, ...], json_columns: frozenset[str], attributes: bool,
              kinds: tuple[type, ...]) -> RowsFormatter:
    names = [f"v{i}" for i in range(len(columns))]
    cells = []
    for v, column, kind in zip(names, columns, kinds, strict=True):
        if column in json_columns:
            cells.append(f"('\\\\N' if {v} is None else _json({v}))")
        else:
            cells.append(_FIRST.get(kind, _GENERIC).format(v=v))
    source = (
        "def format_rows(rows, _json):\n"
        "    lines = []\n"
        "    append = lines.append\n"
        "    for r in rows:\n"
        f"        {', '.join(names)}, = {'(_get(r),)' if len(names) == 1 else '_get(r)'}\n"
        "        append('\\t'.join((" + ", ".join(cells) + ",)))\n"
        "    return '\\n'.join(lines) + '\\n'\n")
    getter = attrgetter(*columns) if attributes else itemgetter(*columns)
    namespace: dict[str, Any] = {"_cell": _any_cell, "_get": getter}
    exec(compile(source, f"<copy text of {', '.join(columns)}>", "exec"), namespace)  # noqa: S102
    formatter: RowsFormatter = namespace["format_rows"]
    return formatter


def _any_cell(value: Any) -> str:
    try:
        return _CELL[type(value)](value)
    except KeyError:
        raise TypeError(f"no COPY text form for values of type {type(value)}") from None


RowsBytes = Callable[..., bytes]  # (rows, json_memo=None) -> bytes


def _extension() -> Any:
    """The C formatter, if built from the .pyx beside this module (else None)."""
    try:
        from projections.readmodel import _copytext  # type: ignore[attr-defined]
    except ImportError:
        return None
    if getattr(_copytext, "SOURCE_DIGEST", None) != pyx_digest(Path(__file__).with_name("_copytext.pyx")):
        return None
    return _copytext.format_rows


_FORMAT_ROWS = _extension()


def rows_copy_bytes(columns: tuple[str, ...], json_columns: frozenset[str] = frozenset(),
                    attributes: bool = False, extension: bool = True) -> RowsBytes:
    """Like `rows_formatter`, but the text as UTF-8 bytes (what COPY is sent), from the C formatter
    when it is built (`extension`)."""
    format_in_c = _FORMAT_ROWS if extension else None
    if format_in_c is None:
        format_text = rows_formatter(columns, json_columns, attributes)

        def encoded(rows: Sequence[Any], json_memo: JsonMemo | None = None) -> bytes:
            return format_text(rows, json_memo).encode()

        return encoded
    is_json = tuple(c in json_columns for c in columns)

    def format_rows(rows: Sequence[Any], json_memo: JsonMemo | None = None) -> bytes:
        return format_in_c(rows, columns, is_json, attributes, json_memo or _json_text, _int_array)  # type: ignore[no-any-return]

    return format_rows
