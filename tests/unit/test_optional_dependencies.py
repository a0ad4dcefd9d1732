"""A missing optional test dependency skips on a developer's machine and fails under CI."""

from __future__ import annotations

import pytest

from tests.optional import import_or_skip

MISSING = "squall_no_such_module_for_this_test"


def test_under_ci_a_missing_dependency_fails_saying_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(ImportError, match=f"{MISSING} is required under CI: pip install it"):
        import_or_skip(MISSING, "pip install it")


def test_elsewhere_it_skips_saying_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="pip install it"):
        import_or_skip(MISSING, "pip install it")


def test_a_present_dependency_is_imported_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    for ci in ("true", ""):
        monkeypatch.setenv("CI", ci)
        assert import_or_skip("json", "stdlib").dumps([1]) == "[1]"
