"""Readers for the Kerberos recordings in ``tests/fixtures/kerberos`` (see its README.md).

``http/NN-name.*`` are byte-exact HTTP exchanges of a Kerberos-secured Hadoop 3.3.6 (the
``.txt`` transcript, the ``.json`` split into exchanges, the client's command, exit code,
stdout and stderr); ``cli/NN-name.txt`` are command-line clients' outputs. Tests replay
or parse them; nothing here invents an answer.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from tests.replay import FIXTURES, Headers

KERBEROS = FIXTURES / "kerberos"
HTTP = KERBEROS / "http"
CLI = KERBEROS / "cli"
HTTP_SUFFIXES = (".txt", ".json", ".cmd", ".cmd-rc", ".cmd-stdout", ".cmd-stderr")
_MARKER = re.compile(rb"(>>>|<<<) \[conn (\d+)\] (?:client -> :(\d+)|:(\d+) -> client)  \((\d+) bytes\)\n")


@dataclass(frozen=True)
class Message:
    """One recorded request or response."""

    raw: bytes
    first_line: str
    headers: Headers
    body: bytes  # as on the wire (chunked framing kept)
    body_dechunked: bytes | None

    @property
    def status(self) -> int:
        return int(self.first_line.split()[1])

    @property
    def reason(self) -> str:
        return self.first_line.split(" ", 2)[2]

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive)."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def header_names(self) -> list[str]:
        return [k for k, _ in self.headers]

    @property
    def content(self) -> bytes:
        return self.body if self.body_dechunked is None else self.body_dechunked


@dataclass(frozen=True)
class Exchange:
    conn: int
    server_port: int
    request: Message
    response: Message
    interim: tuple[Message, ...] = ()


@dataclass(frozen=True)
class Recording:
    name: str
    command: str
    exit_code: int
    exchanges: tuple[Exchange, ...]


def _message(doc: dict, first_key: str) -> Message:
    latin = lambda text: (text or "").encode("latin-1")  # noqa: E731 - the recorder stored bytes as latin-1
    return Message(
        raw=latin(doc["raw"]),
        first_line=doc[first_key],
        headers=[(k, v) for k, v in doc["headers"]],
        body=latin(doc.get("body")),
        body_dechunked=latin(doc["body_dechunked"]) if doc.get("body_dechunked") is not None else None,
    )


def names() -> list[str]:
    """Every recording in ``http/`` (``01-webhdfs-liststatus-no-auth``, ...)."""
    return sorted(p.name[: -len(".json")] for p in HTTP.glob("*.json"))


def recording(name: str) -> Recording:
    """``http/<name>.json`` as typed exchanges (``name`` may be the number prefix alone, e.g. ``"15"``)."""
    if not (HTTP / f"{name}.json").exists():
        [name] = [n for n in names() if n.startswith(f"{name}-")]
    doc = json.loads((HTTP / f"{name}.json").read_text(encoding="utf-8"))
    exchanges = tuple(
        Exchange(
            conn=e["conn"],
            server_port=e["server_port"],
            request=_message(e["request"], "request_line"),
            response=_message(e["response"], "status_line"),
            interim=tuple(_message(i, "status_line") for i in e.get("interim_responses") or ()),
        )
        for e in doc["exchanges"]
    )
    return Recording(name, doc["command"], int(doc["exit_code"]), exchanges)


def transcript(name: str) -> list[tuple[str, int, int, bytes]]:
    """``http/<name>.txt`` as segments ``(">>>" or "<<<", conn, server port, bytes)``."""
    raw = (HTTP / f"{name}.txt").read_bytes()
    pos, segments = 0, []
    while pos < len(raw):
        found = _MARKER.match(raw, pos)
        if found is None:
            raise ValueError(f"{name}.txt: no segment marker at byte {pos}")
        size, start = int(found.group(5)), found.end()
        if raw[start + size : start + size + 1] != b"\n":
            raise ValueError(f"{name}.txt: segment at byte {pos} is not {size} bytes long")
        port = int(found.group(3) or found.group(4))
        segments.append((found.group(1).decode(), int(found.group(2)), port, raw[start : start + size]))
        pos = start + size + 1
    return segments


def client_output(name: str) -> tuple[str, int, str, str]:
    """``(command, exit code, stdout, stderr)`` of the client that made ``http/<name>``."""
    read = lambda suffix: (HTTP / f"{name}{suffix}").read_text(encoding="utf-8", errors="replace")  # noqa: E731
    return read(".cmd"), int(read(".cmd-rc").strip()), read(".cmd-stdout"), read(".cmd-stderr")


def cli(name: str) -> tuple[str, int, str, str]:
    """``cli/<name>.txt`` as ``(command, exit code, stdout, stderr)``."""
    text = (CLI / f"{name}.txt").read_text(encoding="utf-8")
    command = text.splitlines()[0].removeprefix("$ ")
    code = int(re.search(r"\[exit code (\d+)\]", text).group(1))
    _, _, rest = text.partition("--- stdout ---\n")
    stdout, _, stderr = rest.partition("\n--- stderr")
    return command, code, stdout, stderr.partition("---\n")[2]


# --------------------------------------------------------------------------- Hadoop tokens


def _vlong(data: bytes, pos: int) -> tuple[int, int]:
    """Hadoop's ``WritableUtils.readVLong``: ``(value, next position)``."""
    first = struct.unpack_from("b", data, pos)[0]
    if first >= -112:
        return first, pos + 1
    negative = first < -120
    size = -(first + 120) if negative else -(first + 112)
    value = int.from_bytes(data[pos + 1 : pos + 1 + size], "big")
    return (~value if negative else value), pos + 1 + size


def _vbytes(data: bytes, pos: int) -> tuple[bytes, int]:
    size, pos = _vlong(data, pos)
    return data[pos : pos + size], pos + size


def encode_vlong(value: int) -> bytes:
    """Hadoop's ``WritableUtils.writeVLong``."""
    if -112 <= value <= 127:
        return struct.pack("b", value)
    length = -112
    if value < 0:
        value, length = ~value, -120
    size = (value.bit_length() + 7) // 8
    return struct.pack("b", length - size) + value.to_bytes(size, "big")


@dataclass(frozen=True)
class DelegationToken:
    """A decoded ``delegation=`` URL token (``Token.encodeToUrlString``)."""

    owner: str
    renewer: str
    real_user: str
    issue_ms: int
    max_ms: int
    sequence: int
    master_key_id: int
    password: bytes
    kind: str
    service: str


def decode_delegation_token(url_string: str) -> DelegationToken:
    """Decode a Hadoop delegation token as WebHDFS puts it in a ``delegation=`` parameter."""
    data = base64.urlsafe_b64decode(url_string + "=" * (-len(url_string) % 4))
    identifier, pos = _vbytes(data, 0)
    password, pos = _vbytes(data, pos)
    kind, pos = _vbytes(data, pos)
    service, pos = _vbytes(data, pos)
    if pos != len(data) or identifier[0] != 0:
        raise ValueError("not a version-0 delegation token")
    fields, at = [], 1
    for _ in range(3):
        text, at = _vbytes(identifier, at)
        fields.append(text.decode())
    numbers = []
    for _ in range(4):
        value, at = _vlong(identifier, at)
        numbers.append(value)
    return DelegationToken(*fields, *numbers, password, kind.decode(), service.decode())


def encode_delegation_token(token: DelegationToken) -> str:
    """The ``delegation=`` form of ``token`` (the inverse of :func:`decode_delegation_token`)."""
    text = lambda s: encode_vlong(len(s.encode())) + s.encode()  # noqa: E731
    identifier = b"\0" + b"".join(text(s) for s in (token.owner, token.renewer, token.real_user))
    identifier += b"".join(encode_vlong(n) for n in (token.issue_ms, token.max_ms, token.sequence, token.master_key_id))
    data = b"".join(encode_vlong(len(part)) + part for part in (identifier, token.password))
    data += text(token.kind) + text(token.service)
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def recording_path(name: str, suffix: str) -> Path:
    return HTTP / f"{name}{suffix}"
