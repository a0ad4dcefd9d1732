"""Hail's current query language (v2, the `/api/v2alpha` listings and Hail's UI): text -> a typed AST.

One term per line; the terms of a query all hold at once (AND). Hail's grammar has no `or`, no
`not` and no parentheses: negation is the operator (`!=`, `!~`). A term is one of

    "text"                    an attribute key or value equal to text (jobs: or an instance name)
    text                      an attribute key or value containing text (jobs: or an instance name)
    FIELD OP VALUE            a field compared with a value
    KEY OP VALUE              the attribute KEY compared with a value (any key that is not a field)

Operators: `=` (or `==`) and `!=` match exactly; `=~` and `!~` match part of the text; `>`, `>=`,
`<`, `<=` compare numbers and times. Spaces around the operator are optional; the value is one word,
or "quoted" (then it may hold spaces and operators: `name = "a b"` compares with `a b`). Apart from
the value, a term's text cannot contain an operator's characters (as in Hail).

    field           listing   operators               value
    batch_id        batches   = != > >= < <=          an integer
    job_id          jobs      = != > >= < <=          an integer
    exit_code       jobs      = != > >= < <=          an integer, or NULL (= and != only)
    state           both      = !=                    batches: open closed complete running cancelled
                                                      failure success; jobs: pending ready creating
                                                      running live cancelled error failed bad success done
    user, billing_project   batches   = !=            text
    instance, instance_collection   jobs   = != =~ !~ text
    start_time, end_time    both      = != > >= < <=  an ISO 8601 time (no zone means UTC)
    duration        both      = != > >= < <=          seconds (a decimal number)
    cost            both      = != > >= < <=          US dollars (a decimal number, `$` allowed)

Errors are `QueryError`s that name the line and the term, with Hail's wording ("could not parse
term", "unexpected operator", "unknown state", "expected int/float/date, but found"). Where Hail's
parser differs: blank lines are skipped (Hail refuses them), a quoted value is unquoted (Hail
compares `name = "x"` with the three characters `"x"`), a term splits at its first operator
(Hail tries the operators in a fixed order, so `name = a<b` is three words there and one value
here), a time without a zone is UTC (Hail fails with a 500), and numbers are ASCII decimals only
(Hail's float() also takes `nan`, `inf`, `1_0` and non-ASCII digits).

Pure: no I/O, no SQL. `services.front.query_v2_sql` compiles the AST to bound-parameter SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Final, Literal, cast

MAX_QUERY_CHARS: Final = 10_000
MAX_TERMS: Final = 100
MAX_BIGINT: Final = 2**63 - 1
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

Listing = Literal["batches", "jobs"]
IdField = Literal["batch_id", "job_id"]
TimeField = Literal["start_time", "end_time"]
TextField = Literal["user", "billing_project", "instance", "instance_collection"]


class QueryError(ValueError):
    """A query that does not parse; the message names the line and the term, and what to write instead."""

    def __init__(self, message: str, line: int | None = None, term: str | None = None) -> None:
        where = f"line {line}: {term!r}: " if line is not None and term is not None else ""
        super().__init__(where + message)
        self.line = line
        self.term = term
        self.message = where + message


class Op(Enum):
    EQ = "="
    NE = "!="
    LIKE = "=~"
    NOT_LIKE = "!~"
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="

    @property
    def negated(self) -> bool:
        return self in (Op.NE, Op.NOT_LIKE)


EXACT: Final = frozenset({Op.EQ, Op.NE})
MATCH: Final = frozenset({Op.EQ, Op.NE, Op.LIKE, Op.NOT_LIKE})
COMPARE: Final = frozenset({Op.EQ, Op.NE, Op.GT, Op.GE, Op.LT, Op.LE})

# Every spelling, longest first so `>=` is never read as `>` then `=`.
_SPELLINGS: Final = {"==": Op.EQ, "!=": Op.NE, "=~": Op.LIKE, "!~": Op.NOT_LIKE, ">=": Op.GE, "<=": Op.LE,
                     "=": Op.EQ, ">": Op.GT, "<": Op.LT}
_OPERATOR_AT: Final = re.compile("|".join(re.escape(s) for s in sorted(_SPELLINGS, key=len, reverse=True)))

BATCH_STATES: Final = ("open", "closed", "complete", "running", "cancelled", "failure", "success")
JOB_STATES: Final = {
    "pending": ("Pending",),
    "ready": ("Ready",),
    "creating": ("Creating",),
    "running": ("Running",),
    "live": ("Ready", "Creating", "Running"),
    "cancelled": ("Cancelled",),
    "error": ("Error",),
    "failed": ("Failed",),
    "bad": ("Error", "Failed"),
    "success": ("Success",),
    "done": ("Cancelled", "Error", "Failed", "Success"),
}


# --- the AST ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TextMatch:
    """A bare word (partial, case-insensitive) or a quoted one (exact) against attribute keys and values."""

    text: str
    exact: bool


@dataclass(frozen=True, slots=True)
class StateIs:
    word: str  # a key of JOB_STATES or one of BATCH_STATES
    op: Op     # EQ or NE


@dataclass(frozen=True, slots=True)
class IdCompare:
    field: IdField
    op: Op
    value: int


@dataclass(frozen=True, slots=True)
class ExitCodeCompare:
    op: Op
    value: int | None  # None: no exit code (NULL)


@dataclass(frozen=True, slots=True)
class TimeCompare:
    field: TimeField
    op: Op
    ms: int  # since the epoch, UTC


@dataclass(frozen=True, slots=True)
class DurationCompare:
    op: Op
    ms: int


@dataclass(frozen=True, slots=True)
class CostCompare:
    op: Op
    usd: float


@dataclass(frozen=True, slots=True)
class TextCompare:
    field: TextField
    op: Op
    value: str


@dataclass(frozen=True, slots=True)
class AttributeCompare:
    key: str
    op: Op
    value: str


Term = (TextMatch | StateIs | IdCompare | ExitCodeCompare | TimeCompare | DurationCompare | CostCompare
        | TextCompare | AttributeCompare)


@dataclass(frozen=True, slots=True)
class Query:
    listing: Listing
    terms: tuple[Term, ...]


# --- parsing ---------------------------------------------------------------------------------

_FIELDS: Final[dict[Listing, frozenset[str]]] = {
    "batches": frozenset({"batch_id", "state", "user", "billing_project", "start_time", "end_time", "duration",
                          "cost"}),
    "jobs": frozenset({"job_id", "state", "instance", "instance_collection", "start_time", "end_time", "duration",
                       "cost", "exit_code"}),
}


def check_text(text: str, what: str = "q") -> None:
    """Refuse what PostgreSQL cannot store or compare: NUL and lone surrogates (they never come from UTF-8)."""
    if "\x00" in text:
        raise QueryError(f"{what} must not contain NUL characters")
    if any("\ud800" <= c <= "\udfff" for c in text):
        raise QueryError(f"{what} must be valid Unicode text (it contains a lone surrogate)")


def parse(q: str, listing: Listing) -> Query:
    """The query's terms in order; a QueryError names the first bad term."""
    if len(q) > MAX_QUERY_CHARS:
        raise QueryError(f"the query is {len(q)} characters long; the limit is {MAX_QUERY_CHARS}")
    check_text(q)
    terms: list[Term] = []
    for number, line in enumerate(q.split("\n"), start=1):
        if not line.strip():
            continue
        if len(terms) == MAX_TERMS:
            raise QueryError(f"a query has at most {MAX_TERMS} terms")
        try:
            terms.append(_term(line.strip(), listing))
        except QueryError as exc:
            raise QueryError(exc.message, number, line.strip()) from None
    return Query(listing, tuple(terms))


def _term(text: str, listing: Listing) -> Term:
    found = _OPERATOR_AT.search(text)
    if found is None:
        return _word(text)
    left, op, right = text[:found.start()].strip(), _SPELLINGS[found.group()], text[found.end():].strip()
    quoted = len(right) >= 2 and right[0] == right[-1] == '"'
    if not left or not right or len(left.split()) != 1 or (len(right.split()) != 1 and not quoted):
        raise QueryError("could not parse term; write one term per line as FIELD OP VALUE (e.g. state = failed), "
                         'a "quoted" exact match, or a single word')
    if quoted:
        right = right[1:-1]
    if left in _FIELDS[listing]:
        return _field(left, op, right, listing)
    _require(op, MATCH, left)  # any other word is an attribute key (a field of the other listing too, as in Hail)
    return AttributeCompare(left, op, right)


def _word(text: str) -> TextMatch:
    if len(text.split()) != 1:
        raise QueryError('could not parse term; a term without an operator is one word or one "quoted" word')
    if text.startswith('"'):
        if len(text) < 3 or not text.endswith('"'):
            raise QueryError('a quoted exact match is "text": a closing quote and at least one character inside')
        return TextMatch(text[1:-1], exact=True)
    if text.endswith('"'):
        raise QueryError('an unquoted word must not end with \'"\'; quote both ends for an exact match')
    return TextMatch(text, exact=False)


def _field(name: str, op: Op, value: str, listing: Listing) -> Term:
    if name == "state":
        _require(op, EXACT, name)
        known = BATCH_STATES if listing == "batches" else tuple(JOB_STATES)
        if value not in known:
            raise QueryError(f'unknown state "{value}"; use one of {", ".join(known)}')
        return StateIs(value, op)
    if name in ("batch_id", "job_id"):
        _require(op, COMPARE, name)
        maximum = MAX_BIGINT if name == "batch_id" else 2**31 - 1
        return IdCompare(cast(IdField, name), op, parse_int(value, maximum=maximum))
    if name == "exit_code":
        _require(op, COMPARE, name)
        if value.upper() == "NULL":
            if op not in EXACT:
                raise QueryError(f'unexpected operator "{op.value}" for a NULL exit code; expected one of =, ==, !=')
            return ExitCodeCompare(op, None)
        return ExitCodeCompare(op, parse_int(value, maximum=2**31 - 1))
    if name in ("start_time", "end_time"):
        _require(op, COMPARE, name)
        return TimeCompare(cast(TimeField, name), op, parse_time_ms(value))
    if name == "duration":
        _require(op, COMPARE, name)
        return DurationCompare(op, _ms(parse_float(value)))
    if name == "cost":
        _require(op, COMPARE, name)
        return CostCompare(op, parse_float(value[1:] if value.startswith("$") else value))
    assert name in ("user", "billing_project", "instance", "instance_collection")
    _require(op, EXACT if name in ("user", "billing_project") else MATCH, name)
    return TextCompare(cast(TextField, name), op, value)


def _require(op: Op, allowed: frozenset[Op], name: str) -> None:
    if op not in allowed:
        spelled = ", ".join(o.value for o in Op if o in allowed)
        raise QueryError(f'unexpected operator "{op.value}" for {name}; expected one of {spelled}')


_INT: Final = re.compile(r"[+-]?[0-9]+")
_FLOAT: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_int(word: str, *, maximum: int = MAX_BIGINT) -> int:
    """ASCII decimal digits only: str.isdigit() and int() also take other scripts' digits."""
    if not _INT.fullmatch(word):
        raise QueryError(f"expected int, but found {word}")
    value = int(word)
    if not -maximum - 1 <= value <= maximum:
        raise QueryError(f"expected int, but found {word} (out of range: at most {maximum})")
    return value


def parse_float(word: str) -> float:
    if not _FLOAT.fullmatch(word):
        raise QueryError(f"expected float, but found {word}")
    value = float(word)
    if value in (float("inf"), float("-inf")):
        raise QueryError(f"expected float, but found {word} (too large)")
    return value


def _ms(seconds: float) -> int:
    ms = round(seconds * 1000)
    if abs(ms) > MAX_BIGINT:
        raise QueryError(f"expected float, but found {seconds} seconds (too large)")
    return ms


def parse_time_ms(word: str) -> int:
    """An ISO 8601 time, e.g. 2026-01-01T00:00:00Z or 2026-01-01; without a zone it is UTC."""
    if not word.isascii():
        raise QueryError(f"expected date, but found {word}")
    try:
        when = datetime.fromisoformat(word)
    except ValueError:
        raise QueryError(f"expected date, but found {word} (write an ISO 8601 time such as "
                         "2026-01-01T00:00:00Z)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // timedelta(milliseconds=1)  # exact: no float on the way


# --- printing (the inverse of parse, for messages and the property tests) --------------------

def render(term: Term) -> str:
    """One line of query text that parses back to `term`."""
    match term:
        case TextMatch(text, exact):
            return f'"{text}"' if exact else text
        case StateIs(word, op):
            return f"state {op.value} {word}"
        case IdCompare(name, op, value):
            return f"{name} {op.value} {value}"
        case ExitCodeCompare(op, value):
            return f"exit_code {op.value} {'NULL' if value is None else value}"
        case TimeCompare(name, op, ms):
            return f"{name} {op.value} {_iso(ms)}"
        case DurationCompare(op, ms):
            return f"duration {op.value} {ms / 1000!r}"
        case CostCompare(op, usd):
            return f"cost {op.value} {usd!r}"
        case TextCompare(name, op, value):
            return f"{name} {op.value} {_quoted_if_needed(value)}"
        case AttributeCompare(key, op, value):
            return f"{key} {op.value} {_quoted_if_needed(value)}"
    raise AssertionError(term)


def _quoted_if_needed(value: str) -> str:
    plain = value and len(value.split()) == 1 and value.strip() == value and not value.startswith('"') \
        and not (value.endswith('"') and len(value) >= 2) and _OPERATOR_AT.search(value) is None
    return value if plain else f'"{value}"'


def _iso(ms: int) -> str:
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
