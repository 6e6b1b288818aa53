"""SFTP through the bastion: every request read and judged, then relayed to the target.

The client's SFTP session ends at the bastion: the flow cuts the client's stream into
requests (``sftp_wire``), and for each one that names a path or changes something asks
the file policy (``policy.decide_file``, ``[[files]]`` rules) before the request is
written to the target's own SFTP server (``Upstream.start_sftp``, over the stored key). A
refused request gets "permission denied" from the bastion and never reaches the target.
Request ids are renumbered, so the bastion's own queries (``REALPATH``) never collide with
the client's; file data is relayed as it comes, pipelined, with back-pressure both ways.

What is judged: ``open`` (read and/or write by its flags), ``opendir`` (read), ``remove``
and ``rmdir`` (remove), ``mkdir``, ``setstat``/``fsetstat``/``lsetstat`` (setstat),
``rename``/``posix-rename`` (rename), ``symlink``/``hardlink`` (symlink: the link is
written, its target read). Each path is judged as the client wrote it (made absolute
against the login's home), as the target resolves it (``REALPATH``: symlinks followed), and
as its resolved parent plus its own name (a symlink itself), and the most restrictive
answer wins. Metadata reads (``stat``, ``lstat``, ``realpath``, ``readlink``, ``statvfs``,
directory reads) pass and are counted. A request or extension not in ``sftp_wire`` is
answered "unsupported". A ``review`` answer refuses too (SFTP cannot wait for an
approver); the message says a person must approve.

Reads are masked (``[masking] live``) with the same length, so offsets stay true: the
bastion reads a little before and after what was asked (``LOOK`` bytes) to see secrets
that cross the edge. Files starting with a compressed container's magic are relayed as
they are. Recording: every judged operation is a marker in the session's cast and an
audit event (path, size, result); ``close`` tells the bytes read and written.

Limits: between the check and the operation a path can change on the target (a symlink
swapped in): the bastion cannot lock the target's filesystem.
"""

from __future__ import annotations

import asyncio
import posixpath
import struct
from collections import Counter, deque
from dataclasses import dataclass

from ..errors import BastionError
from ..policy import Decision, decide_file
from ..record import RecordingError
from ..record.mask import is_compressed
from . import sftp_wire as wire
from .base import EXIT_BASTION_ERROR, Flow, FlowContext
from .ports import ExitResult, RemoteCommand
from .sftp_wire import FX, FXP, Request, WireError

__all__ = ["LOOK", "SftpFlow"]

#: Bytes read before and after a masked read, so a secret crossing its edges is seen.
LOOK = 8192
#: Largest masked read passed on (a longer one gets a short read, which clients repeat);
#: also the read limit announced to clients (``limits@openssh.com``).
MAX_MASKED_READ = 64 * 1024
#: Client requests waiting while one is judged, before the client's reading pauses.
BACKLOG_LIMIT = 128
_SEVERITY = {"allow": 0, "review": 1, "deny": 2}


@dataclass
class _Handle:
    path: str
    kind: str  # file | dir
    ops: tuple[str, ...]
    read: int = 0
    written: int = 0
    mask: bool | None = None  # None: not known until the first bytes are seen


@dataclass
class _Pending:
    client_id: int
    req: Request
    op: str = ""
    path: str = ""
    handle: _Handle | None = None
    behind: int = -1  # a masked read: bytes read before the client's offset
    want: int = 0
    start: int = 0


class SftpFlow(Flow):
    """One SFTP session: judge, relay, record."""

    def __init__(self, ctx: FlowContext):
        super().__init__(ctx)
        self.remote: RemoteCommand | None = None
        self.masker = ctx.masker
        self._client_frames = wire.PacketReader()
        self._upstream_frames = wire.PacketReader()
        self._backlog: deque[bytes] = deque()
        self._busy = False
        self._initialized = False
        self._client_eof = False
        self._eof_sent = False
        self._paused_client = False
        self._pending: dict[int, _Pending] = {}
        self._queries: dict[int, asyncio.Future[bytes]] = {}
        self._handles: dict[bytes, _Handle] = {}
        self._next_id = 0
        self._home: asyncio.Future[str] | None = None
        self._worker: asyncio.Task[None] | None = None
        self.counts: Counter[str] = Counter()

    # ---- the client's side ----
    def data_received(self, data: bytes) -> None:
        if self.finished:
            return
        try:
            self._backlog.extend(self._client_frames.feed(data))
        except WireError as exc:
            self._broken(f"the client sent a malformed SFTP packet ({exc})")
            return
        self._pump()
        if len(self._backlog) > BACKLOG_LIMIT and not self._paused_client:
            self._paused_client = True
            self.ctx.client.pause_reading()

    def eof_received(self) -> None:
        self._client_eof = True
        self._pump()

    def client_paused(self) -> None:
        if self.remote is not None:
            self.remote.pause_reading()

    def client_resumed(self) -> None:
        if self.remote is not None:
            self.remote.resume_reading()

    def client_gone(self) -> None:
        if self.remote is not None:
            self.remote.close()
        if not self.finished:
            self._summary()
            self.gone()

    def shutdown(self) -> None:
        if self.remote is not None:
            self.remote.close()
        super().shutdown()

    # ---- the target's side (RemoteSink) ----
    def remote_output(self, data: bytes, stderr: bool) -> None:
        if stderr or self.finished:
            return
        try:
            for packet in self._upstream_frames.feed(data):
                self._reply(packet)
        except WireError as exc:
            self._broken(f"the target's SFTP server sent a malformed packet ({exc})")
        except RecordingError as exc:
            self._broken(str(exc))

    def remote_eof(self) -> None:
        pass

    def remote_exited(self) -> None:
        pass

    def remote_paused(self) -> None:
        self.ctx.client.pause_reading()

    def remote_resumed(self) -> None:
        if not self._paused_client:
            self.ctx.client.resume_reading()

    # ---- the flow ----
    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            if not self.finished:
                self.gone()
            raise
        except BastionError as exc:
            self._end(ExitResult(status=EXIT_BASTION_ERROR, error=str(exc)), str(exc))
        except Exception:  # never let one channel take down others
            self.ctx.log.exception("sftp flow failed")
            self._end(
                ExitResult(status=EXIT_BASTION_ERROR, error="internal error"),
                "internal error in the bastion; see its log",
            )

    async def _run(self) -> None:
        if not self.begin():
            return
        ctx = self.ctx
        ctx.recorder.decision("allow", "sftp", "SFTP session: each operation is judged")
        self._home = asyncio.get_running_loop().create_future()
        self.remote = await ctx.upstream.start_sftp(sink=self)
        if self.finished:
            self.remote.close()
            return
        self._pump()
        result = await self.remote.wait()
        self._end(result, result.error or None)

    def _end(self, result: ExitResult, message: str | None = None) -> None:
        if not self.finished:
            self._summary()
        self.finish(result, message)

    def _broken(self, why: str) -> None:
        self.ctx.log.warning("%s", why)
        if self.remote is not None:
            self.remote.close()
        self._end(ExitResult(status=EXIT_BASTION_ERROR, error=why), why)

    def _summary(self) -> None:
        if self.counts:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
            try:
                self.ctx.recorder.event(
                    "sftp", f"sftp metadata requests: {counts}", op="summary", counts=counts
                )
            except RecordingError:
                pass

    # ---- requests, in order ----
    def _pump(self) -> None:
        """Handle waiting requests in order; one that must be judged runs as a task and
        holds the others back until it is done (so the target sees them in order)."""
        while self._backlog and not self._busy and self.remote is not None and not self.finished:
            packet = self._backlog.popleft()
            try:
                if self._handle_now(packet):
                    continue
            except WireError as exc:
                self._broken(f"the client sent a malformed SFTP request ({exc})")
                return
            self._busy = True
            self._worker = asyncio.get_running_loop().create_task(self._judge(packet))
            self._worker.add_done_callback(self._judged)
        if self._busy or self._backlog:
            return
        if self._paused_client:
            self._paused_client = False
            self.ctx.client.resume_reading()
        if self._client_eof and not self._eof_sent and self.remote is not None:
            self._eof_sent = True
            self.remote.write_eof()

    def _judged(self, task: asyncio.Task[None]) -> None:
        self._busy = False
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, (WireError, RecordingError)):
            self._broken(str(exc))
            return
        if exc is not None:
            self.ctx.log.error("sftp request failed: %r", exc)
            self._broken("internal error in the bastion's SFTP relay; see its log")
            return
        self._pump()

    def _send(self, packet: bytes) -> None:
        assert self.remote is not None
        self.remote.write(packet)

    def _new_id(self) -> int:
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        return self._next_id

    def _forward(self, req: Request, **fields: object) -> None:
        uid = self._new_id()
        self._pending[uid] = _Pending(req.id, req, **fields)  # type: ignore[arg-type]
        self._send(wire.with_id(req.raw, uid))

    def _answer(self, req_id: int, code: int, message: str) -> None:
        self.ctx.client.write(wire.status_reply(req_id, code, message))

    def _handle_now(self, packet: bytes) -> bool:
        """Handle a request that needs no judging; False if it must be judged."""
        if packet[4] == FXP.INIT:
            if self._initialized:
                raise WireError("a second INIT")
            self._initialized = True
            self._send(packet)
            return True
        if not self._initialized:
            raise WireError("the session did not start with INIT")
        req = wire.parse_request(packet)
        kind = req.kind
        if kind == "unknown":
            name = req.ext.decode("ascii", "replace") if req.ext else str(req.type)
            self.counts[f"unsupported {name}"[:60]] += 1
            self._answer(req.id, FX.OP_UNSUPPORTED, f"bastion: {name} is not supported")
            return True
        if kind == "handle":
            return self._handle_request(req)
        if kind == "none" or req.type in (FXP.REALPATH, FXP.STAT, FXP.LSTAT, FXP.READLINK):
            self.counts[_name(req)] += 1
            self._forward(req)
            return True
        if req.ext in (b"statvfs@openssh.com", b"expand-path@openssh.com"):
            self.counts[_name(req)] += 1
            self._forward(req)
            return True
        return False

    def _handle_request(self, req: Request) -> bool:
        handle = self._handles.get(req.handle)
        if handle is None:
            self._answer(req.id, FX.FAILURE, "bastion: unknown handle")
            return True
        masked = bool(self.masker) and handle.mask is not False
        if req.type == FXP.READ and handle.kind == "file" and masked:
            self._masked_read(req, handle)
        elif req.type == FXP.FSETSTAT:
            decision = self._decide("setstat", handle.path)
            if decision.action != "allow":
                self._refuse(req, "setstat", handle.path, decision)
            else:
                self._forward(req, op="setstat", path=handle.path)
        elif req.type == FXP.WRITE:
            handle.written += req.length
            self._forward(req)
        elif req.type == FXP.CLOSE:
            self._forward(req, op="close", handle=handle)
        else:
            if req.type == FXP.READ:
                self._pending_read_plain(req, handle)
                return True
            self.counts[_name(req)] += 1
            self._forward(req)
        return True

    def _pending_read_plain(self, req: Request, handle: _Handle) -> None:
        self._forward(req, handle=handle)

    def _masked_read(self, req: Request, handle: _Handle) -> None:
        want = min(req.length, MAX_MASKED_READ)
        behind = min(req.offset, LOOK)
        start = req.offset - behind
        uid = self._new_id()
        self._pending[uid] = _Pending(
            req.id, req, handle=handle, behind=behind, want=want, start=start
        )
        self._send(wire.read_request(req.handle, start, behind + want + LOOK, uid))

    # ---- judging ----
    async def _judge(self, packet: bytes) -> None:
        req = wire.parse_request(packet)
        assert self._home is not None
        home = await self._home
        try:
            texts = tuple(p.decode("utf-8") for p in req.paths)
        except UnicodeDecodeError:
            why = Decision("deny", "bad-path", "deny (bad-path): a path that is not UTF-8")
            self._refuse(req, "access", repr(req.paths[0])[:80], why)
            return
        if any("\x00" in t for t in texts):
            why = Decision("deny", "bad-path", "deny (bad-path): a path with a NUL byte")
            self._refuse(req, "access", repr(req.paths[0])[:80], why)
            return
        shown = [posixpath.normpath(posixpath.join(home, t)) for t in texts]
        spellings = [await self._spellings(home, t) for t in texts]
        checks = _checks(req)
        worst: Decision | None = None
        for op, first, second in checks:
            for a in spellings[first]:
                for b in spellings[second] if second is not None else [None]:
                    decision = self._decide(op, a, b, cwd=home)
                    if worst is None or _SEVERITY.get(decision.action, 2) > _SEVERITY.get(
                        worst.action, 2
                    ):
                        worst = decision
        label = " -> ".join(shown)
        op_name = _op_label(req)
        if worst is None or worst.action != "allow":
            why = worst or Decision("deny", "sftp", "deny (sftp): nothing to judge")
            self._refuse(req, op_name, label, why)
            return
        if req.type in (FXP.OPEN, FXP.OPENDIR):
            kind = "file" if req.type == FXP.OPEN else "dir"
            ops = tuple(op for op, _, _ in checks) or ("read",)
            self._forward(req, op=op_name, path=label, handle=_Handle(shown[0], kind, ops))
        else:
            self._forward(req, op=op_name, path=label)

    async def _spellings(self, home: str, path: str) -> list[str]:
        """The path as written (absolute), as the target resolves it, and as its
        resolved parent plus its name: every name under which it could be reached."""
        absolute = posixpath.normpath(posixpath.join(home, path))
        names = [absolute]
        resolved = await self._realpath(absolute)
        if resolved and resolved not in names:
            names.append(resolved)
        parent, base = posixpath.split(absolute)
        if base and parent != absolute:
            real_parent = await self._realpath(parent)
            if real_parent:
                joined = posixpath.join(real_parent, base)
                if joined not in names:
                    names.append(joined)
        return names

    async def _realpath(self, path: str) -> str | None:
        uid = self._new_id()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._queries[uid] = future
        self._send(wire.realpath_request(path.encode("utf-8"), uid))
        reply = await future
        if reply[4] != FXP.NAME:
            return None
        name = wire.parse_first_name(reply)
        try:
            return name.decode("utf-8") if name else None
        except UnicodeDecodeError:
            return None

    def _decide(
        self, op: str, path: str, path2: str | None = None, cwd: str | None = None
    ) -> Decision:
        ctx = self.ctx
        return decide_file(
            ctx.policy,
            user=ctx.identity.user,
            groups=ctx.identity.groups,
            target=ctx.target,
            login=ctx.login,
            op=op,
            path=path,
            path2=path2,
            cwd=cwd,
        )

    def _refuse(self, req: Request, op: str, path: str, decision: Decision) -> None:
        word = "held for review" if decision.action == "review" else "denied"
        detail = decision.reason.removeprefix(f"{decision.action} ({decision.rule})")
        detail = detail.removeprefix(":").strip() or decision.rule
        if decision.action == "review":
            detail += " (SFTP cannot wait for an approver: ask one, then use ssh)"
        message = f"bastion: {word} ({decision.rule}): {detail}"
        self.ctx.log.info("sftp %s %s: %s (%s)", op, path, decision.action, decision.rule)
        self.ctx.recorder.event(
            "sftp",
            f"sftp {op} {path}: {decision.action} ({decision.rule})",
            op=op,
            path=path,
            result=decision.action,
            rule=decision.rule,
            reason=decision.reason,
        )
        self._answer(req.id, FX.PERMISSION_DENIED, message)

    # ---- replies ----
    def _reply(self, packet: bytes) -> None:
        ptype = packet[4]
        if ptype == FXP.VERSION:
            self.ctx.client.write(wire.filter_version(packet))
            self._ask_home()
            return
        (rid,) = struct.unpack_from(">I", packet, 5)
        query = self._queries.pop(rid, None)
        if query is not None:
            if not query.done():
                query.set_result(packet)
            return
        pending = self._pending.pop(rid, None)
        if pending is None:
            self.ctx.log.warning("sftp reply to an unknown request id %d dropped", rid)
            return
        if pending.behind >= 0:
            self.ctx.client.write(self._masked_data(pending, packet))
            return
        if pending.req.ext == b"limits@openssh.com" and self.masker:
            # masked reads ask the target for LOOK bytes either side: keep the client's
            # reads small enough that the target's answer is never cut short
            packet = wire.cap_read_limit(packet, MAX_MASKED_READ)
        if pending.handle is not None:
            self._account(pending, packet)
        elif pending.op:
            self._note(pending, packet)
        self.ctx.client.write(wire.with_id(packet, pending.client_id))

    def _ask_home(self) -> None:
        uid = self._new_id()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._queries[uid] = future
        self._send(wire.realpath_request(b".", uid))

        def done(reply: asyncio.Future[bytes]) -> None:
            assert self._home is not None
            if self._home.done():
                return
            name = wire.parse_first_name(reply.result()) if reply.result()[4] == FXP.NAME else None
            home = name.decode("utf-8", "replace") if name else "/"
            self._home.set_result(home if home.startswith("/") else "/")

        future.add_done_callback(done)

    def _masked_data(self, pending: _Pending, packet: bytes) -> bytes:
        cid = pending.client_id
        handle = pending.handle
        assert handle is not None and self.masker is not None
        if packet[4] != FXP.DATA:
            return wire.with_id(packet, cid)
        data = wire.parse_data(packet)
        if handle.mask is None and pending.start == 0:
            handle.mask = not is_compressed(data[:16])
        if handle.mask is not False:
            data = self.masker.mask(data, same_length=True)
        out = data[pending.behind : pending.behind + pending.want]
        if not out:
            return wire.status_reply(cid, FX.EOF, "end of file")
        handle.read += len(out)
        return wire.data_reply(cid, out)

    def _account(self, pending: _Pending, packet: bytes) -> None:
        """Replies about a handle: a new handle, bytes read, a close."""
        handle = pending.handle
        assert handle is not None
        ptype = packet[4]
        if pending.req.type in (FXP.OPEN, FXP.OPENDIR):
            if ptype == FXP.HANDLE:
                self._handles[wire.parse_handle(packet)] = handle
            self._note(pending, packet)
        elif pending.req.type == FXP.READ and ptype == FXP.DATA:
            (length,) = struct.unpack_from(">I", packet, 9)
            handle.read += length
            if handle.mask is None and pending.req.offset == 0:
                handle.mask = not is_compressed(packet[13:29])
        elif pending.req.type == FXP.CLOSE:
            self._handles.pop(pending.req.handle, None)
            code = wire.parse_status(packet)[0] if ptype == FXP.STATUS else FX.FAILURE
            result = "ok" if code == FX.OK else f"error {code}"
            what = f"read {handle.read}, wrote {handle.written}"
            if handle.kind == "dir":
                what = "listed"
            self.ctx.recorder.event(
                "sftp",
                f"sftp close {handle.path}: {what} bytes",
                op="close",
                path=handle.path,
                result=result,
                bytes_read=handle.read,
                bytes_written=handle.written,
            )

    def _note(self, pending: _Pending, packet: bytes) -> None:
        """The target's answer to a judged operation, recorded and audited."""
        if packet[4] == FXP.STATUS:
            code, message = wire.parse_status(packet)
            result = "ok" if code == FX.OK else f"error {code}: {message}"[:200]
        elif packet[4] == FXP.HANDLE:
            result = "ok"
        else:
            result = f"reply {packet[4]}"
        self.ctx.recorder.event(
            "sftp",
            f"sftp {pending.op} {pending.path}: allow, {result}",
            op=pending.op,
            path=pending.path,
            result=result,
        )


def _checks(req: Request) -> list[tuple[str, int, int | None]]:
    """(policy operation, index of its path, index of a second path) for a request."""
    t, ext = req.type, req.ext
    if t == FXP.OPEN:
        ops: list[tuple[str, int, int | None]] = []
        if req.flags & wire.FXF_READ or not req.flags & (
            wire.FXF_WRITE | wire.FXF_APPEND | wire.FXF_CREAT | wire.FXF_TRUNC
        ):
            ops.append(("read", 0, None))
        if req.flags & (wire.FXF_WRITE | wire.FXF_APPEND | wire.FXF_CREAT | wire.FXF_TRUNC):
            ops.append(("write", 0, None))
        return ops
    if t == FXP.OPENDIR:
        return [("read", 0, None)]
    if t in (FXP.REMOVE, FXP.RMDIR):
        return [("remove", 0, None)]
    if t == FXP.MKDIR:
        return [("mkdir", 0, None)]
    if t == FXP.SETSTAT or ext == b"lsetstat@openssh.com":
        return [("setstat", 0, None)]
    if t == FXP.RENAME or ext == b"posix-rename@openssh.com":
        return [("rename", 0, 1)]
    if t == FXP.SYMLINK:
        # OpenSSH sends (target, link), the draft (link, target): judge both readings
        return [("symlink", 0, 1), ("symlink", 1, 0)]
    if ext == b"hardlink@openssh.com":
        return [("symlink", 0, 1)]
    return [("write", 0, None)]  # fail closed: an unexpected path request is a write


def _op_label(req: Request) -> str:
    if req.type == FXP.OPEN:
        ops = [op for op, _, _ in _checks(req)]
        return "open " + "+".join(ops)
    return _name(req)


_NAMES = {v: k.lower() for k, v in vars(FXP).items() if k.isupper()}


def _name(req: Request) -> str:
    if req.ext:
        return req.ext.decode("ascii", "replace").split("@")[0]
    return _NAMES.get(req.type, str(req.type))
