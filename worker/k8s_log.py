"""Decode podman's k8s-file container log format back into the raw bytes the process wrote.

Each line of the file is `<RFC3339 time> <stdout|stderr> <F|P> <content>`: F ends a line the
process wrote (a newline follows), P is a partial line (no newline: it continues in the next
entry). The worker tails this file itself instead of the API's log follow, which lags ~100 ms
behind a container's exit; both streams are interleaved in the order written.
"""

from __future__ import annotations


class K8sFileLogDecoder:
    """Feed it file bytes as they appear; it returns the raw output of every complete entry."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        self._pending += data
        *lines, self._pending = self._pending.split(b"\n")
        return b"".join(decode_line(line) for line in lines)

    def flush(self) -> bytes:
        """Whatever is left at the end (an entry without its trailing newline)."""
        rest, self._pending = self._pending, b""
        return decode_line(rest) if rest else b""


def decode_line(line: bytes) -> bytes:
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return b""  # not an entry (should not happen); dropping beats corrupting the log
    tag = parts[2]
    content = parts[3] if len(parts) == 4 else b""
    return content if tag == b"P" else content + b"\n"
