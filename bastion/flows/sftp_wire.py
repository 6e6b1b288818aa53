"""SFTP version 3 on the wire (draft-ietf-secsh-filexfer-02, as OpenSSH speaks it).

Only what the bastion's SFTP relay needs: cutting a byte stream into packets, reading
the fields of every request that names a path or a handle, and building the few replies
the bastion sends itself (a status). Pure functions over bytes; no I/O.

Every request type and OpenSSH extension the relay knows is listed in ``REQUESTS`` and
``EXTENSIONS``; anything else is answered "unsupported" by the relay, never passed on.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = [
    "EXTENSIONS",
    "cap_read_limit",
    "FX",
    "FXP",
    "MAX_PACKET",
    "PacketReader",
    "Request",
    "WireError",
    "data_reply",
    "filter_version",
    "parse_request",
    "parse_status",
    "status_reply",
    "with_id",
]

#: Largest SFTP packet accepted from either side (OpenSSH's own limit is 256 KiB).
MAX_PACKET = 1024 * 1024


class FXP:
    INIT, VERSION, OPEN, CLOSE, READ, WRITE, LSTAT, FSTAT = 1, 2, 3, 4, 5, 6, 7, 8
    SETSTAT, FSETSTAT, OPENDIR, READDIR, REMOVE, MKDIR, RMDIR = 9, 10, 11, 12, 13, 14, 15
    REALPATH, STAT, RENAME, READLINK, SYMLINK = 16, 17, 18, 19, 20
    STATUS, HANDLE, DATA, NAME, ATTRS = 101, 102, 103, 104, 105
    EXTENDED, EXTENDED_REPLY = 200, 201


class FX:
    OK, EOF, NO_SUCH_FILE, PERMISSION_DENIED, FAILURE, BAD_MESSAGE = 0, 1, 2, 3, 4, 5
    OP_UNSUPPORTED = 8


# open flags
FXF_READ, FXF_WRITE, FXF_APPEND, FXF_CREAT, FXF_TRUNC, FXF_EXCL = 1, 2, 4, 8, 0x10, 0x20

#: The requests the relay passes on, by what they carry after the id:
#: "path" one path, "paths" two, "handle" a handle, "open" path + flags, "none" nothing.
REQUESTS: dict[int, str] = {
    FXP.OPEN: "open",
    FXP.CLOSE: "handle",
    FXP.READ: "handle",
    FXP.WRITE: "handle",
    FXP.LSTAT: "path",
    FXP.FSTAT: "handle",
    FXP.SETSTAT: "path",
    FXP.FSETSTAT: "handle",
    FXP.OPENDIR: "path",
    FXP.READDIR: "handle",
    FXP.REMOVE: "path",
    FXP.MKDIR: "path",
    FXP.RMDIR: "path",
    FXP.REALPATH: "path",
    FXP.STAT: "path",
    FXP.RENAME: "paths",
    FXP.READLINK: "path",
    FXP.SYMLINK: "paths",
}

#: OpenSSH extensions the relay understands (and offers the client), by what they carry.
EXTENSIONS: dict[bytes, str] = {
    b"posix-rename@openssh.com": "paths",
    b"hardlink@openssh.com": "paths",
    b"statvfs@openssh.com": "path",
    b"fstatvfs@openssh.com": "handle",
    b"fsync@openssh.com": "handle",
    b"lsetstat@openssh.com": "path",
    b"limits@openssh.com": "none",
    b"expand-path@openssh.com": "path",
}


class WireError(ValueError):
    """A packet that does not parse: the session ends (the client is broken or hostile)."""


@dataclass
class Request:
    """One client request, as far as the bastion judges it."""

    type: int
    id: int
    raw: bytes
    ext: bytes = b""  # the extension name of an EXTENDED request
    paths: tuple[bytes, ...] = ()
    handle: bytes = b""
    flags: int = 0  # OPEN's pflags
    offset: int = 0  # READ / WRITE
    length: int = 0  # READ's length, WRITE's data length
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        if self.type == FXP.EXTENDED:
            return EXTENSIONS.get(self.ext, "unknown")
        return REQUESTS.get(self.type, "unknown")


class PacketReader:
    """Cuts a byte stream into SFTP packets (length prefix included)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        packets = []
        start = 0
        while len(buf) - start >= 4:
            (length,) = struct.unpack_from(">I", buf, start)
            if length < 1 or length > MAX_PACKET:
                raise WireError(f"bad SFTP packet length {length}")
            end = start + 4 + length
            if end > len(buf):
                break
            packets.append(bytes(buf[start:end]))
            start = end
        if start:
            del buf[:start]
        return packets


class _Cursor:
    def __init__(self, data: bytes, pos: int):
        self.data, self.pos = data, pos

    def u32(self) -> int:
        if self.pos + 4 > len(self.data):
            raise WireError("truncated SFTP packet")
        (value,) = struct.unpack_from(">I", self.data, self.pos)
        self.pos += 4
        return int(value)

    def u64(self) -> int:
        if self.pos + 8 > len(self.data):
            raise WireError("truncated SFTP packet")
        (value,) = struct.unpack_from(">Q", self.data, self.pos)
        self.pos += 8
        return int(value)

    def string(self) -> bytes:
        length = self.u32()
        if self.pos + length > len(self.data):
            raise WireError("truncated SFTP string")
        value = self.data[self.pos : self.pos + length]
        self.pos += length
        return value


def parse_request(packet: bytes) -> Request:
    """The fields of one client request (INIT excluded)."""
    if len(packet) < 9:
        raise WireError("SFTP packet too short")
    ptype = packet[4]
    cur = _Cursor(packet, 5)
    req = Request(ptype, cur.u32(), packet)
    if ptype == FXP.EXTENDED:
        req.ext = cur.string()
    kind = req.kind
    if kind == "path":
        req.paths = (cur.string(),)
    elif kind == "paths":
        req.paths = (cur.string(), cur.string())
    elif kind == "handle":
        req.handle = cur.string()
        if ptype == FXP.READ:
            req.offset, req.length = cur.u64(), cur.u32()
        elif ptype == FXP.WRITE:
            req.offset = cur.u64()
            req.length = cur.u32()
    elif kind == "open":
        req.paths = (cur.string(),)
        req.flags = cur.u32()
    return req


def with_id(packet: bytes, new_id: int) -> bytes:
    """The same packet under another request id."""
    return packet[:5] + struct.pack(">I", new_id) + packet[9:]


def read_request(handle: bytes, offset: int, length: int, req_id: int) -> bytes:
    body = struct.pack(">BI", FXP.READ, req_id) + _string(handle)
    body += struct.pack(">QI", offset, length)
    return struct.pack(">I", len(body)) + body


def realpath_request(path: bytes, req_id: int) -> bytes:
    body = struct.pack(">BI", FXP.REALPATH, req_id) + _string(path)
    return struct.pack(">I", len(body)) + body


def status_reply(req_id: int, code: int, message: str) -> bytes:
    body = (
        struct.pack(">BII", FXP.STATUS, req_id, code) + _string(message.encode()) + _string(b"en")
    )
    return struct.pack(">I", len(body)) + body


def data_reply(req_id: int, data: bytes) -> bytes:
    body = struct.pack(">BI", FXP.DATA, req_id) + _string(data)
    return struct.pack(">I", len(body)) + body


def parse_status(packet: bytes) -> tuple[int, str]:
    """A STATUS reply's code and message."""
    cur = _Cursor(packet, 9)
    code = cur.u32()
    try:
        message = cur.string().decode("utf-8", "replace")
    except WireError:
        message = ""
    return code, message


def parse_data(packet: bytes) -> bytes:
    return _Cursor(packet, 9).string()


def parse_handle(packet: bytes) -> bytes:
    return _Cursor(packet, 9).string()


def parse_first_name(packet: bytes) -> bytes | None:
    """The first file name of a NAME reply (REALPATH answers with one)."""
    cur = _Cursor(packet, 9)
    if cur.u32() < 1:
        return None
    return cur.string()


def cap_read_limit(packet: bytes, most: int) -> bytes:
    """A ``limits@openssh.com`` reply whose max-read-length is at most ``most``."""
    if packet[4] != FXP.EXTENDED_REPLY or len(packet) < 9 + 32:
        return packet
    max_packet, max_read, max_write, max_open = struct.unpack_from(">QQQQ", packet, 9)
    if max_read == 0 or max_read > most:
        max_read = most
    return packet[:9] + struct.pack(">QQQQ", max_packet, max_read, max_write, max_open)


def filter_version(packet: bytes) -> bytes:
    """The server's VERSION with only the extensions the relay understands."""
    cur = _Cursor(packet, 5)
    version = cur.u32()
    kept = b""
    while cur.pos < len(packet):
        name, data = cur.string(), cur.string()
        if name in EXTENSIONS:
            kept += _string(name) + _string(data)
    body = struct.pack(">BI", FXP.VERSION, version) + kept
    return struct.pack(">I", len(body)) + body


def _string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


__all__ += [
    "FXF_APPEND",
    "FXF_CREAT",
    "FXF_EXCL",
    "FXF_READ",
    "FXF_TRUNC",
    "FXF_WRITE",
    "REQUESTS",
    "parse_data",
    "parse_first_name",
    "parse_handle",
    "read_request",
    "realpath_request",
]
