"""Which podman / OCI runtime errors are the job's own fault, and which are the system's.

A job whose spec cannot run (its executable is not in the image, its working directory or user does
not exist, its image reference is malformed) must end at once as an Error carrying the runtime's
message: running it again fails the same way. Everything not recognised here is treated as the
system's (podman service down, disk full on the worker, registry timeouts) and retried by the core,
so a pattern here must be specific: "OCI permission denied" alone is also what a mis-set rlimit
gives, which is the machine's fault. Wordings are podman 4.3, crun 1.8 and runc 1.1, recorded from
real runs in tests/unit/worker/test_podman_errors.py.
"""

from __future__ import annotations

import re

from worker.runtime import ContainerSpecInvalid, ImageNotFound, ImagePullFailed, InvalidImageReference

# the reference grammar refused the name (podman's parser, before any registry is contacted)
_INVALID_REFERENCE = re.compile(
    r"invalid reference format|repository name must be lowercase|repository name must not be more than"
    r"|repository name must be canonical|invalid tag format|invalid checksum digest|unsupported digest algorithm",
    re.IGNORECASE)

# the container spec does not fit the image: create or start refused it
_SPEC_ERRORS = re.compile("|".join((
    r"executable file (.{0,300} )?not found in \$PATH",  # crun and runc: the command is not in the image
    r"OCI runtime attempted to invoke a command that was not found",
    r"open executable: (permission denied|operation not permitted)",  # crun: not executable, a directory
    r'exec: ".{0,300}": (permission denied|is a directory)',  # runc's wording of the same
    r'workdir ".{0,300}" (does not exist on container|exists on container .{0,80}, but is not a directory)',
    r"chdir to (cwd|`)",  # crun/runc could not enter the working directory
    r"unable to find (user|group) .{0,300}: no matching entries in (passwd|group) file",
    r"no command or entrypoint provided",
)), re.IGNORECASE)

_NOT_FOUND_HINTS = ("manifest unknown", "name unknown", "not found", "repository does not exist",
                    "requested access to the resource is denied", "unauthorized",
                    "short-name", "no unqualified-search registries")
_TRANSIENT_HINTS = ("dial tcp", "i/o timeout", "connection refused", "no such host", "timeout", "temporary",
                    "connection reset", "eof", "too many requests", "429", "500", "502", "503", "504")


def is_invalid_reference(message: str) -> bool:
    return bool(_INVALID_REFERENCE.search(message))


def is_container_spec_error(message: str) -> bool:
    return bool(_SPEC_ERRORS.search(message))


def classify_pull_error(image: str, message: str) -> InvalidImageReference | ImageNotFound | ImagePullFailed:
    """A malformed reference or an image that does not exist is the user's (final); anything that
    looks like the network or the registry having a bad moment is retried as a system failure."""
    if is_invalid_reference(message):
        return InvalidImageReference(f"invalid image reference {image!r}: {message}")
    lowered = message.lower()
    if any(h in lowered for h in _NOT_FOUND_HINTS) and not any(t in lowered for t in _TRANSIENT_HINTS):
        return ImageNotFound(f"image {image!r} not found: {message}")
    return ImagePullFailed(f"pulling image {image!r} failed (will be retried): {message}")


def user_error_for(message: str) -> InvalidImageReference | ContainerSpecInvalid | None:
    """The user error a create/start failure message stands for, or None when it is the system's."""
    if is_invalid_reference(message):
        return InvalidImageReference(message)
    if is_container_spec_error(message):
        return ContainerSpecInvalid(message)
    return None
