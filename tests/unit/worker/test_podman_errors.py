"""Classification of podman / crun / runc errors: recorded messages, the user's against the system's.

The messages were recorded from podman 4.3.1 + crun 1.8.1 on this project's machines (runc 1.1
wordings from its source); tests/integration/worker/test_sandbox.py runs the real cases end to end.
"""

from __future__ import annotations

import pytest

from worker.podman_errors import classify_pull_error, user_error_for
from worker.runtime import ContainerSpecInvalid, ImageNotFound, ImagePullFailed, InvalidImageReference

SPEC_ERRORS = [
    "crun: executable file `/bin/bash` not found in $PATH: No such file or directory: OCI runtime attempted to "
    "invoke a command that was not found",
    "crun: executable file `bash` not found in $PATH: No such file or directory: OCI runtime attempted to invoke "
    "a command that was not found",
    "crun: open executable: Permission denied: OCI permission denied",
    "crun: open executable: Operation not permitted: OCI permission denied",
    'workdir "/nope/x" does not exist on container 9af2145fee1ca0ead16b5236f5cbd22a252f170b4b4d0dd8899d8335f92b2b58',
    'workdir "/etc/passwd" exists on container 1ab7a6685f4369a49a4fe8fdaf15b7eec9e8c098aeb2a329fedc2d805fe0b4c8, '
    "but is not a directory",
    "unable to find user nosuchuser: no matching entries in passwd file",
    'runc create failed: unable to start container process: exec: "bash": executable file not found in $PATH',
    'runc create failed: unable to start container process: exec: "/etc": is a directory',
    'runc create failed: unable to start container process: chdir to cwd ("/nope") set in config.json failed: '
    "no such file or directory",
    "no command or entrypoint provided, and no CMD or ENTRYPOINT from image",
]

SYSTEM_ERRORS = [
    "crun: setrlimit `RLIMIT_NOFILE`: Operation not permitted: OCI permission denied",
    "OCI runtime error: crun: cgroups in hybrid mode not supported, drop all controllers from cgroupv2",
    "statfs /nonexistent/x: no such file or directory",
    "write /var/lib/containers/storage/overlay-containers/x/userdata/config.json: no space left on device",
    "creating container storage: the container name \"x\" is already in use",
    "netavark: code: 1, msg: iptables: Chain already exists",
    "error setting rlimit type 7: operation not permitted",
]


@pytest.mark.parametrize("message", SPEC_ERRORS)
def test_a_spec_the_runtime_refuses_is_the_users_error(message: str) -> None:
    err = user_error_for(message)
    assert isinstance(err, ContainerSpecInvalid) and str(err) == message


@pytest.mark.parametrize("message", SYSTEM_ERRORS)
def test_the_systems_failures_stay_retryable(message: str) -> None:
    assert user_error_for(message) is None


@pytest.mark.parametrize(("image", "message"), [
    ("UPPER/Case:tag", "repository name must be lowercase"),
    ("../../etc/passwd", "invalid reference format"),
    ("a b", "failed to find image a b: invalid reference format"),
    ("x" * 300, "repository name must not be more than 255 characters"),
])
def test_malformed_references_are_final(image: str, message: str) -> None:
    assert isinstance(classify_pull_error(image, message), InvalidImageReference)
    assert isinstance(user_error_for(message), InvalidImageReference)


def test_pull_errors_missing_is_final_and_network_trouble_is_transient() -> None:
    assert isinstance(classify_pull_error("x/y:1", "manifest unknown: manifest unknown"), ImageNotFound)
    assert isinstance(classify_pull_error("x/y:1", "reading manifest 1 in docker.io/x/y: requested access to the "
                                                   "resource is denied"), ImageNotFound)
    transient = ('initializing source docker://registry.invalid/a/b:1: pinging container registry '
                 'registry.invalid: Get "https://registry.invalid/v2/": dial tcp: lookup registry.invalid on '
                 '10.255.255.53:53: no such host')
    assert isinstance(classify_pull_error("registry.invalid/a/b:1", transient), ImagePullFailed)
    assert isinstance(classify_pull_error("x/y:1", "received unexpected HTTP status: 503 Service Unavailable"),
                      ImagePullFailed)
