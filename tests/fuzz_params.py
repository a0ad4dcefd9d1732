"""Hypothesis strategies for hostile URL parameters, already percent-encoded for a request target.

One request has one hostile parameter and valid values (or none) for the others, so the hostile
value is what the handler meets, not a 400 some other parameter caused first. The hostile values
are the ones that used to reach a 5xx: NUL, lone surrogates (UTF-8 encoded, which is not UTF-8),
bytes that are no UTF-8 at all, unicode digits that pass `str.isdigit()` but not `int()`, numbers
past every integer column and very long values; alone, or after a valid start (`job_id=` + '²',
`has:` + NUL), which a check looking only at the start would pass on to the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from hypothesis import strategies as st

_NASTY_TEXT = ["\x00", "a\x00b", "has:\x00", "job_id=\x00", "²", "١٢", "０", "\u00a0", "\ufeff", "\n", " ",
               "%", "%00", "+", "&", "=", "#", "?", "/", "..", "../../etc/passwd", "'", '"', "\\", ";--", "{}", "[]",
               "\U0001f600", "\u202e", "\ud800", "\udfff", "a\ud800b", "x" * 5_000, "has:a " * 3_000]
_NASTY_INTS = ["²", "١", "١٢", "٣", "０", "𝟘", "-1", "-0", "+1", " 1", "1 ", "1_0", "1e3", "0x10", "1.5", "",
               "9" * 19, "9" * 20, "9" * 400, str(2**31), str(2**31 - 1), str(2**63), str(2**63 - 1), "NaN",
               "\x00", "1\x00"]


def encode(value: str | bytes) -> str:
    """Percent-encode every byte that is not unreserved; str as UTF-8, lone surrogates included."""
    data = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    return quote(data, safe="")


_NASTY = _NASTY_TEXT + _NASTY_INTS + [b"\xff", b"\xc0\x80", b"\xed\xa0\x80"]
_hostile: st.SearchStrategy[str | bytes] = st.one_of(
    st.sampled_from(_NASTY),
    st.sampled_from(_NASTY),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=40),  # surrogates included
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.binary(max_size=40),
)


def _joined(parts: tuple[str, str | bytes]) -> str | bytes:
    start, rest = parts
    if isinstance(rest, bytes):
        return start.encode() + rest
    return start + rest


@dataclass(frozen=True)
class Param:
    """A parameter: values a handler accepts (or at least reads past), e.g. ids of seeded rows."""

    valid: list[str] = field(default_factory=lambda: ["1"])

    def valid_values(self) -> st.SearchStrategy[str]:
        return st.sampled_from(self.valid).map(encode)

    def hostile_values(self) -> st.SearchStrategy[str]:
        starts = st.sampled_from(self.valid)
        return st.one_of(_hostile, st.tuples(starts, _hostile).map(_joined)).map(encode)

    def hostile_examples(self) -> list[str]:
        """Every curated hostile value, alone and after each valid start (for a deterministic sweep)."""
        return [encode(v) for v in _NASTY] + [encode(_joined((start, v))) for start in self.valid for v in _NASTY]


def int_param(valid: list[int] | None = None) -> Param:
    return Param([str(v) for v in valid or [0, 1]])


def text_param(valid: list[str] | None = None) -> Param:
    return Param(list(valid or ["a"]))


STRAY = "<stray>"  # a parameter the route does not declare: must be harmless too


def request_parts(path: dict[str, Param], query: dict[str, Param]) -> st.SearchStrategy[tuple[dict[str, str], str]]:
    """(path values, query string): one parameter (path, query or a stray one) hostile, the others
    valid; query parameters other than the hostile one present or not."""
    targets = [*path, *query, STRAY]

    def build(target: str) -> st.SearchStrategy[tuple[dict[str, str], str]]:
        path_values = st.fixed_dictionaries({
            name: (p.hostile_values() if name == target else p.valid_values()) for name, p in path.items()})
        required = {name: p.hostile_values() for name, p in query.items() if name == target}
        optional = {name: p.valid_values() for name, p in query.items() if name != target}
        if target == STRAY:
            required[STRAY] = text_param().hostile_values()
        query_values = st.fixed_dictionaries(required, optional=optional)
        stray_name = text_param().hostile_values()
        return st.tuples(path_values, query_values, stray_name).map(
            lambda t: (t[0], "&".join(f"{t[2] if k == STRAY else k}={v}" for k, v in t[1].items())))

    return st.sampled_from(targets).flatmap(build)


def sweep(path: dict[str, Param], query: dict[str, Param]) -> list[tuple[dict[str, str], str]]:
    """Each curated hostile value in each parameter in turn, the others at their first valid value:
    the values that used to fail are always tried, whatever hypothesis draws besides."""
    base_path = {name: encode(p.valid[0]) for name, p in path.items()}
    out = []
    for name, p in path.items():
        out += [({**base_path, name: value}, "") for value in p.hostile_examples()]
    for name, p in query.items():
        out += [(base_path, f"{name}={value}") for value in p.hostile_examples()]
    return out
