"""Test dependencies a developer may lack (the Hail client, schemathesis) but CI must have.

On a laptop a missing one skips its tests, saying what to install; under CI=true (as `.ci/run`
sets it) the import error stands, so the module fails to collect and the run fails rather than
passing with the Hail-compatibility tests quietly skipped."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def import_or_skip(module: str, install: str) -> ModuleType:
    if os.environ.get("CI") == "true":
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            raise ImportError(f"{module} is required under CI: {install}") from exc
    return pytest.importorskip(module, reason=install)
