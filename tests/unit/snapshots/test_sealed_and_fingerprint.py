"""A snapshot's bytes: plain data only, another format is outdated, damaged bytes are corrupt."""

from __future__ import annotations

import pickle
import struct
import sys
import types
import zlib

import pytest

from projections.snapshots.fingerprint import class_shape, fold_fingerprint, module_code
from projections.snapshots.sealed import HEADER_LEN, SnapshotCorrupt, SnapshotOutdated, _digest, seal, unseal

FP = bytes(range(16))
PLAIN = ({"a": [1, 2.5, None, True]}, {(1, "x"), (2, "y")}, frozenset({3}), b"\x00\xff", bytearray(b"ab"), "é")


def test_plain_data_round_trips() -> None:
    assert unseal(FP, seal(FP, PLAIN)) == PLAIN


def test_another_format_is_outdated_not_misread() -> None:
    with pytest.raises(SnapshotOutdated):
        unseal(bytes(16), seal(FP, PLAIN))


@pytest.mark.parametrize("damage", [
    lambda b: b[:-1],                                   # truncated
    lambda b: b[:HEADER_LEN + 3] + bytes([b[HEADER_LEN + 3] ^ 1]) + b[HEADER_LEN + 4:],  # a flipped bit
    lambda b: b"XXXX" + b[4:],                          # not a snapshot
    lambda b: b[:10],                                   # shorter than a header
])
def test_damaged_bytes_are_corrupt(damage) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SnapshotCorrupt):
        unseal(FP, damage(seal(FP, PLAIN)))


class Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (print, ("pwned",))


def test_a_body_naming_any_class_or_function_is_refused_even_with_a_valid_digest(capsys) -> None:
    body = zlib.compress(pickle.dumps([Evil()]))
    blob = struct.pack(">4s16sQ16s", b"SQSN", FP, len(body), _digest(body)) + body
    with pytest.raises(SnapshotCorrupt, match="plain data only"):
        unseal(FP, blob)
    assert "pwned" not in capsys.readouterr().out


class Slotted:
    __slots__ = ("a", "b")


class SlottedMore(Slotted):
    __slots__ = ("c",)


def test_the_fingerprint_follows_class_shapes_code_and_version(tmp_path) -> None:
    assert class_shape(SlottedMore).endswith("SlottedMore(a,b,c)")
    source = tmp_path / "fold_mod.py"
    source.write_text("def evolve(s):\n    # a comment\n    return s + 1\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import fold_mod  # type: ignore[import-not-found]
        base = fold_fingerprint(1, [Slotted], [fold_mod])
        assert fold_fingerprint(1, [Slotted], [fold_mod]) == base
        assert fold_fingerprint(2, [Slotted], [fold_mod]) != base
        assert fold_fingerprint(1, [SlottedMore], [fold_mod]) != base
        source.write_text("def evolve(s):\n    # another comment, same code\n\n    return s + 1\n")
        assert fold_fingerprint(1, [Slotted], [fold_mod]) == base, "comments and blank lines do not count"
        source.write_text("def evolve(s):\n    return s + 2\n")
        assert fold_fingerprint(1, [Slotted], [fold_mod]) != base
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("fold_mod", None)


def test_a_module_without_source_is_fingerprinted_by_its_bytes(tmp_path) -> None:
    compiled = tmp_path / "m.cpython-311-x86_64-linux-gnu.so"
    compiled.write_bytes(b"\x7fELF...")
    module = types.ModuleType("m")
    module.__file__ = str(compiled)
    assert module_code(module) == b"\x7fELF...".hex()
