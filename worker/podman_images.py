"""Images through the podman REST API: inspect (the layers and run config the sandbox needs) and pull,
with failures classified as the user's (malformed reference, no such image) or the system's."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests
from podman.errors import APIError

from worker.podman_api import api_message
from worker.podman_errors import classify_pull_error, is_invalid_reference
from worker.runtime import ContainerRuntimeError, InvalidImageReference
from worker.sandbox import ImageConfig


def inspect_image(client: Any, image: str) -> ImageConfig | None:
    """The image's layers and config; None if this machine does not have it. `client` is a
    podman-py PodmanClient."""
    response = client.api.get(f"/images/{quote(image, safe='')}/json")
    if response.status_code == 404:
        message = api_message(response)
        if is_invalid_reference(message):  # podman's parser refused the name before looking
            raise InvalidImageReference(f"invalid image reference {image!r}: {message}")
        return None
    if response.status_code >= 300:
        raise ContainerRuntimeError(f"inspecting image {image!r} failed: {api_message(response)}")
    try:
        return ImageConfig.from_inspect(response.json())
    except ValueError as exc:
        raise ContainerRuntimeError(f"image {image!r}: {exc}") from exc


def pull_image(client: Any, image: str) -> None:
    """Pull; raises InvalidImageReference, ImageNotFound (final) or ImagePullFailed (retried)."""
    errors: list[str] = []
    try:
        # the pull answers 200 and reports failures inside the stream: read them from there
        stream: Any = client.images.pull(image, stream=True, decode=True)  # an iterator of dicts
        for progress in stream:
            if isinstance(progress, dict) and progress.get("error"):
                errors.append(str(progress["error"]))
    except APIError as exc:
        raise classify_pull_error(image, str(exc.explanation or exc)) from exc
    except requests.exceptions.RequestException as exc:
        raise classify_pull_error(image, str(exc)) from exc
    if errors:
        raise classify_pull_error(image, "; ".join(errors))
