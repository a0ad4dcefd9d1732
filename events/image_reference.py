"""Container image references, by the grammar podman and Docker parse them (distribution/reference).

    ref = parse_image("ubuntu:24.04")          # docker.io/library/ubuntu, tag 24.04
    parse_image("UPPER/Case:tag")              # InvalidImageReference: ... must be lowercase
    parse_reference("test:5000/repo@sha256:...")  # the grammar alone, no normalisation

The front end refuses a job whose image is not a reference (400 at submit), and the worker can
tell an invalid reference, which is the user's mistake and never worth a retry, from a pull that
failed. Pure: regular expressions and string checks only.

The grammar is distribution/reference's regexp.go, transcribed: Go's RE2 and Python's `re` agree
on these patterns' submatches (both prefer the leftmost, greedy alternative), `\\w` is ASCII here
as in Go, and every match is a fullmatch (so a trailing newline is refused, which `$` would allow).
`parse_image` is its ParseNormalizedNamed: a familiar name like "busybox" means
docker.io/library/busybox. Digests are checked as go-digest checks them, for the algorithms
podman registers (sha256, sha384, sha512).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REPOSITORY_NAME_MAX = 255  # RepositoryNameTotalLengthMax
MAX_REFERENCE_LENGTH = 1024  # longer than any valid one; bounds the matching work

_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_LOCALHOST = "localhost"
_DOMAIN_NAME_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_OPTIONAL_PORT = r"(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_IDENTIFIER = r"([a-f0-9]{64})"
_IPV6_ADDRESS = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_NAME = _DOMAIN_NAME_COMPONENT + r"(?:\." + _DOMAIN_NAME_COMPONENT + r")*"
_HOST = r"(?:" + _DOMAIN_NAME + r"|" + _IPV6_ADDRESS + r")"
_DOMAIN_AND_PORT = _HOST + _OPTIONAL_PORT
_PATH_COMPONENT = _ALPHANUMERIC + r"(?:" + _SEPARATOR + _ALPHANUMERIC + r")*"
_REMOTE_NAME = _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
_NAME = r"(?:" + _DOMAIN_AND_PORT + r"/)?" + _REMOTE_NAME

DOMAIN_RE = re.compile(_DOMAIN_AND_PORT, re.ASCII)
NAME_RE = re.compile(r"(?:(" + _DOMAIN_AND_PORT + r")/)?(" + _REMOTE_NAME + r")", re.ASCII)
REFERENCE_RE = re.compile(r"(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?", re.ASCII)
TAG_RE = re.compile(_TAG, re.ASCII)
IDENTIFIER_RE = re.compile(_IDENTIFIER, re.ASCII)

# go-digest's registered algorithms in podman, and the length of their hex encoding
DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_LOWER_HEX = re.compile(r"[a-f0-9]+", re.ASCII)

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"


class InvalidImageReference(ValueError):
    """Not an image reference; the message names the rule it breaks (distribution/reference's wording)."""


@dataclass(frozen=True, slots=True)
class ImageReference:
    domain: str  # "" when the reference names none (parse_reference only)
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def parse_reference(s: str) -> ImageReference:
    """distribution/reference's Parse: the grammar, with no default domain."""
    if s == "":
        raise InvalidImageReference("repository name must have at least one component")
    if len(s) > MAX_REFERENCE_LENGTH:
        raise InvalidImageReference(f"reference is longer than {MAX_REFERENCE_LENGTH} characters")
    match = REFERENCE_RE.fullmatch(s)
    if match is None:
        if s.lower() != s and REFERENCE_RE.fullmatch(s.lower()) is not None:
            raise InvalidImageReference("repository name must be lowercase")
        raise InvalidImageReference("invalid reference format")
    name, tag, digest = match.group(1), match.group(2), match.group(3)
    name_match = NAME_RE.fullmatch(name)
    assert name_match is not None  # the reference pattern embeds the name pattern
    domain, path = name_match.group(1) or "", name_match.group(2)
    if len(path) > REPOSITORY_NAME_MAX:
        raise InvalidImageReference(f"repository name must not be more than {REPOSITORY_NAME_MAX} characters")
    if digest is not None:
        _check_digest(digest)
    return ImageReference(domain=domain, path=path, tag=tag, digest=digest)


def parse_image(s: str) -> ImageReference:
    """distribution/reference's ParseNormalizedNamed: what podman makes of a job's `image`.

    A familiar name gets Docker Hub's domain ("busybox" is docker.io/library/busybox), "localhost/x"
    stays local, and a bare 64-hex string (an image id, not a name) is refused.
    """
    if IDENTIFIER_RE.fullmatch(s):
        raise InvalidImageReference(f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = _split_docker_domain(s)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise InvalidImageReference(f"invalid reference format: repository name ({remote}) must be lowercase")
    return parse_reference(f"{domain}/{remainder}")


def check_image(s: str) -> str:
    """`s` if it is a valid image reference, else InvalidImageReference saying why and what is expected."""
    try:
        parse_image(s)
    except InvalidImageReference as exc:
        raise InvalidImageReference(
            f"{s[:200]!r} is not a valid image reference ({exc}); expected [REGISTRY[:PORT]/]NAME[:TAG][@DIGEST] "
            "with a lowercase name, e.g. ubuntu:24.04 or localhost/busybox") from None
    return s


def _split_docker_domain(name: str) -> tuple[str, str]:
    maybe_domain, slash, maybe_remote = name.partition("/")
    if not slash:
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name
    if maybe_domain == LEGACY_DEFAULT_DOMAIN:
        domain, remote = DEFAULT_DOMAIN, maybe_remote
    elif (maybe_domain == _LOCALHOST or "." in maybe_domain or ":" in maybe_domain  # a host, an IP, a port
          or maybe_domain.lower() != maybe_domain):  # uppercase namespaces do not exist: it is a domain
        domain, remote = maybe_domain, maybe_remote
    else:
        domain, remote = DEFAULT_DOMAIN, name
    if domain == DEFAULT_DOMAIN and "/" not in remote:
        remote = OFFICIAL_REPO_PREFIX + remote
    return domain, remote


def _check_digest(digest: str) -> None:
    """go-digest's Validate for the algorithms podman has."""
    algorithm, _, encoded = digest.partition(":")
    length = DIGEST_HEX_LENGTHS.get(algorithm)
    if length is None:
        raise InvalidImageReference(f"unsupported digest algorithm {algorithm!r}; use one of "
                                    f"{', '.join(DIGEST_HEX_LENGTHS)}")
    if len(encoded) != length:
        raise InvalidImageReference(f"invalid checksum digest length: {algorithm} needs {length} hex digits")
    if not _LOWER_HEX.fullmatch(encoded):
        raise InvalidImageReference("invalid checksum digest format: lowercase hex digits only")
