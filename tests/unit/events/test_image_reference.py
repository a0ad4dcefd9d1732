"""events/image_reference.py against distribution/reference's own test tables (reference_cases.py),
and the references the security probe submitted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.image_reference import (
    DOMAIN_RE,
    NAME_RE,
    REFERENCE_RE,
    InvalidImageReference,
    check_image,
    parse_image,
    parse_reference,
)
from tests.unit.events import reference_cases as cases

# distribution/reference's error values, as this module words them
ERRORS = {
    "ErrNameEmpty": "at least one component",
    "ErrReferenceInvalidFormat": "invalid reference format",
    "ErrNameContainsUppercase": "must be lowercase",
    "ErrNameTooLong": "must not be more than 255 characters",
    "digest.ErrDigestInvalidLength": "invalid checksum digest length",
    "digest.ErrDigestUnsupported": "unsupported digest algorithm",
}
# The Go test binary registers sha256 only; podman registers sha512 too, so this one parses here.
SHA512_CASE = "validname@sha512:" + "f" * 128


def _id(case: object) -> str:
    text = case[0] if isinstance(case, tuple) else case["input"] if isinstance(case, dict) else str(case)
    return text if len(text) <= 60 else text[:57] + "..."


@pytest.mark.parametrize("case", cases.DOMAIN_REGEXP, ids=_id)
def test_domain_regexp(case: tuple) -> None:
    text, matches, _ = case
    assert (DOMAIN_RE.fullmatch(text) is not None) == matches


@pytest.mark.parametrize("case", cases.FULL_NAME_REGEXP, ids=_id)
def test_full_name_regexp(case: tuple) -> None:
    text, matches, subs = case
    found = NAME_RE.fullmatch(text)
    assert (found is not None) == matches
    if found is not None and subs is not None:
        assert [g or "" for g in found.groups()] == subs


@pytest.mark.parametrize("case", cases.REFERENCE_REGEXP, ids=_id)
def test_reference_regexp(case: tuple) -> None:
    text, matches, subs = case
    found = REFERENCE_RE.fullmatch(text)
    assert (found is not None) == matches
    if found is not None and subs is not None:
        assert [g or "" for g in found.groups()] == subs


@pytest.mark.parametrize("case", cases.REFERENCE_PARSE, ids=_id)
def test_reference_parse(case: dict) -> None:
    if case["err"] is not None and case["input"] != SHA512_CASE:
        with pytest.raises(InvalidImageReference, match=ERRORS[case["err"]]):
            parse_reference(case["input"])
        return
    ref = parse_reference(case["input"])
    if case["input"] == SHA512_CASE:
        assert ref.digest == "sha512:" + "f" * 128
        return
    assert ref.name == case["repository"]
    assert ref.domain == case["domain"]
    assert (ref.tag or "") == case["tag"]
    assert (ref.digest or "") == case["digest"]
    assert str(ref) == case["input"]


@pytest.mark.parametrize("name", cases.VALID_REFERENCE_NAMES + cases.VALID_REMOTE_NAMES)
def test_valid_names_normalise(name: str) -> None:
    parse_image(name)


@pytest.mark.parametrize("name", cases.INVALID_REFERENCE_NAMES + cases.INVALID_REMOTE_NAMES, ids=_id)
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidImageReference):
        parse_image(name)


def test_familiar_names_get_docker_hubs_domain_and_localhost_stays_local() -> None:
    assert parse_image("busybox") == parse_reference("docker.io/library/busybox")
    assert parse_image("ubuntu:24.04").tag == "24.04"
    assert parse_image("hailgenetics/hail:0.2.139").name == "docker.io/hailgenetics/hail"
    assert parse_image("index.docker.io/debian").name == "docker.io/library/debian"
    local = parse_image("localhost/debian-python3:bookworm")
    assert (local.domain, local.path, local.tag) == ("localhost", "debian-python3", "bookworm")


@pytest.mark.parametrize("image", [
    "../../etc/passwd", "a b", "-v/:/host busybox", "busybox\n", "busybox\nrm -rf /", "\nbusybox", "busybox ",
    "busybox;id", "$(id)", "busybox:tag with space", "busybox\x00", "UPPER/Case:tag", "bus\u0131box", "ｂusybox",
])
def test_the_probes_references_are_refused_with_the_rule_they_break(image: str) -> None:
    with pytest.raises(InvalidImageReference, match="is not a valid image reference") as refused:
        check_image(image)
    if image == "UPPER/Case:tag":
        assert "repository name (Case) must be lowercase" in str(refused.value)


@given(st.text(max_size=300))
def test_any_text_is_parsed_or_refused_never_crashes(text: str) -> None:
    try:
        ref = parse_image(text)
    except InvalidImageReference:
        return
    assert "\n" not in text and " " not in text and str(ref)
