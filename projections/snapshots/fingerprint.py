"""The format of a fold's snapshots: a fingerprint of everything that decides what a snapshot means.

A snapshot is only "the fold of the log up to these offsets" for the code that wrote it. So the
fingerprint covers the fold's code itself (each module's syntax tree: comments and formatting do not
count, any change to a statement or a docstring does) and the shape of every class the snapshot
holds (slots or dataclass fields, in order), plus a version the snapshot's codec bumps when it
changes its encoding. Any difference makes the snapshot *outdated*: the next start refolds once
(what every start did before snapshots) and writes snapshots in the new format.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType


def class_shape(cls: type) -> str:
    """The class's stored attributes in order: its slots (through the MRO) or dataclass fields."""
    if dataclasses.is_dataclass(cls):
        names = [f.name for f in dataclasses.fields(cls)]
    else:
        names = [s for klass in reversed(cls.__mro__) for s in getattr(klass, "__slots__", ())]
    return f"{cls.__module__}.{cls.__qualname__}({','.join(names)})"


def module_code(module: ModuleType) -> str:
    """The module's syntax tree as text (no comments, no positions); its bytes when no source is shipped."""
    path = Path(module.__file__ or "")
    if path.suffix != ".py":
        return path.read_bytes().hex() if path.is_file() else module.__name__
    return ast.dump(ast.parse(path.read_text(encoding="utf-8")))


def fold_fingerprint(codec_version: int, classes: Iterable[type], modules: Iterable[ModuleType],
                     extra: Iterable[str] = ()) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    h.update(f"codec {codec_version}\n".encode())
    for cls in classes:
        h.update(class_shape(cls).encode() + b"\n")
    for module in sorted(modules, key=lambda m: m.__name__):
        h.update(f"module {module.__name__}\n".encode())
        h.update(module_code(module).encode())
    for item in extra:
        h.update(item.encode() + b"\n")
    return h.digest()
