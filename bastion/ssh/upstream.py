"""Connections from the bastion to targets, and commands run over them.

Upstream connections are pooled per (target, login) and shared by sessions: a new
command opens a channel on an existing connection instead of a new handshake. A
connection carries at most ``channels_per_connection`` channels (sshd's MaxSessions
defaults to 10) and is closed after ``idle_seconds`` without channels. Host keys are
pinned in policies.toml; an unknown or changed key is refused, never learned.

Fair share: each identity may hold at most ``channels_per_identity`` upstream channels
at once; its further commands wait their turn in its own queue, so one identity's load
never takes the channels another needs.

``TargetUpstream.start`` is the one place that opens a channel on a target, and it only
ever sends an ``exec`` request with a non-empty command: never ``shell``.
``TargetUpstream.start_sftp`` opens the target's ``sftp`` subsystem (and no other) for
the bastion's SFTP relay, which judges every request before it is written there. A lease on a
pooled connection is released on every exit path, a cancelled start included (a channel
confirmed after its requester left is closed at once).

The login shell is probed once per connection (``getent passwd LOGIN``): the bastion
reads bash, so another shell (zsh, fish, csh, a restricted shell) is refused unless the
operator accepted it for that login, and a shell that changed since ``target add``
recorded it is refused too.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import asyncssh

from ..config import Target
from ..errors import HostKeyChangedError, UpstreamError
from ..flows.ports import ExitResult, RemoteSink, Terminal
from .certs import load_private_key
from .tuning import MAX_PKTSIZE, WINDOW, common_options

__all__ = [
    "Lease",
    "TargetUpstream",
    "UpstreamPool",
    "probe_shell",
    "read_login_shell",
    "scan_host_key",
    "shell_is_read",
]

log = logging.getLogger("bastion.upstream")

#: Shells whose reading of a command line the bastion's reader follows.
READ_SHELLS = frozenset({"bash"})


@dataclass(eq=False)
class _Conn:
    conn: asyncssh.SSHClientConnection
    limit: int
    shell: str = ""
    channels: int = 0
    idle: asyncio.TimerHandle | None = None
    closed: bool = False


@dataclass(eq=False)
class Lease:
    """One channel's claim on a pooled connection; released exactly once."""

    pool: UpstreamPool
    slot: _Conn
    on_release: Callable[[], None] | None = None
    released: bool = field(default=False)

    @property
    def conn(self) -> asyncssh.SSHClientConnection:
        return self.slot.conn

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.pool._release(self.slot)
            if self.on_release is not None:
                self.on_release()


class _Client(asyncssh.SSHClient):
    def __init__(self, on_lost: Callable[[], None]):
        self._on_lost = on_lost

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost()


class _RemoteSession(asyncssh.SSHClientSession[bytes]):
    """One command on the target: feeds a ``RemoteSink``, ends once."""

    def __init__(self, sink: RemoteSink, where: str, on_closed: Callable[[], None]):
        self.sink = sink
        self.where = where
        self._on_closed = on_closed
        self.chan: asyncssh.SSHClientChannel[bytes] | None = None
        self._eof = False
        self._done: asyncio.Future[ExitResult] = asyncio.get_running_loop().create_future()

    # ---- asyncssh callbacks ----
    def connection_made(self, chan: asyncssh.SSHClientChannel[bytes]) -> None:  # type: ignore[override]
        self.chan = chan

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self.sink.remote_output(data, datatype == asyncssh.EXTENDED_DATA_STDERR)

    def eof_received(self) -> bool:
        self._eof = True
        self.sink.remote_eof()
        self._settle()
        return True

    def exit_status_received(self, status: int) -> None:
        self.sink.remote_exited()
        self._settle()

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.sink.remote_exited()
        self._settle()

    def pause_writing(self) -> None:
        self.sink.remote_paused()

    def resume_writing(self) -> None:
        self.sink.remote_resumed()

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_closed()
        if not self._done.done():
            result = self.result()
            if result is None or exc is not None:
                why = f"connection to {self.where} lost" + (f": {exc}" if exc else "")
                result = ExitResult(error=why)
            self._done.set_result(result)

    def _settle(self) -> None:
        """EOF and the exit status have both arrived: all output is delivered."""
        if self._eof and not self._done.done():
            result = self.result()
            if result is not None:
                self._done.set_result(result)

    # ---- RemoteCommand ----
    def result(self) -> ExitResult | None:
        if self.chan is None:
            return None
        signal = self.chan.get_exit_signal()
        if signal:
            return ExitResult(signal=signal)
        status = self.chan.get_exit_status()
        if status is not None and status >= 0:
            return ExitResult(status=status)
        return None

    async def wait(self) -> ExitResult:
        return await self._done

    def write(self, data: bytes) -> None:
        if self.chan is not None and not self._done.done():
            try:
                self.chan.write(data)
            except (OSError, asyncssh.Error):
                pass

    def write_eof(self) -> None:
        if self.chan is not None:
            try:
                self.chan.write_eof()
            except (OSError, asyncssh.Error):
                pass

    def resize(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        if self.chan is not None:
            try:
                self.chan.change_terminal_size(width, height, pixwidth, pixheight)
            except (OSError, asyncssh.Error):
                pass

    def signal(self, name: str) -> None:
        if self.chan is not None:
            try:
                self.chan.send_signal(name)
            except (OSError, asyncssh.Error):
                pass

    def send_break(self, msec: int) -> None:
        if self.chan is not None:
            try:
                self.chan.send_break(msec)
            except (OSError, asyncssh.Error):
                pass

    def pause_reading(self) -> None:
        if self.chan is not None:
            self.chan.pause_reading()

    def resume_reading(self) -> None:
        if self.chan is not None:
            self.chan.resume_reading()

    def close(self) -> None:
        if self.chan is not None:
            self.chan.close()


class _Share:
    """One identity's turn-taking for upstream channels."""

    def __init__(self, limit: int):
        self.slots = asyncio.Semaphore(limit)
        self.users = 0


class UpstreamPool:
    """Hands out channels to targets over shared, pinned connections."""

    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        idle_seconds: float = 60.0,
        channels_per_connection: int = 8,
        channels_per_identity: int = 16,
    ):
        self.connect_timeout = connect_timeout
        self.idle_seconds = idle_seconds
        self.channels_per_connection = channels_per_connection
        self.channels_per_identity = channels_per_identity
        self._conns: dict[tuple[str, str], list[_Conn]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._keys: dict[str, asyncssh.SSHKey] = {}
        self._shares: dict[str, _Share] = {}

    def for_session(self, target: Target, login: str, owner: str) -> TargetUpstream:
        """The ``Upstream`` a flow uses: this target and login, on behalf of ``owner``."""
        return TargetUpstream(self, target, login, owner)

    @property
    def open_channels(self) -> int:
        return sum(s.channels for conns in self._conns.values() for s in conns)

    @property
    def open_connections(self) -> int:
        return sum(len(conns) for conns in self._conns.values())

    async def turn(self, owner: str) -> Callable[[], None]:
        """Wait for ``owner``'s turn; returns the function that gives it back."""
        share = self._shares.get(owner)
        if share is None:
            share = self._shares[owner] = _Share(self.channels_per_identity)
        share.users += 1
        try:
            await share.slots.acquire()
        except BaseException:
            self._leave(owner, share)
            raise
        given = False

        def give_back() -> None:
            nonlocal given
            if not given:
                given = True
                share.slots.release()
                self._leave(owner, share)

        return give_back

    def _leave(self, owner: str, share: _Share) -> None:
        share.users -= 1
        if share.users <= 0 and self._shares.get(owner) is share:
            del self._shares[owner]

    async def lease(self, target: Target, login: str) -> Lease:
        """A connection with room for one more channel, connecting if needed."""
        key = (target.name, login)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            for slot in self._conns.get(key, []):
                if not slot.closed and slot.channels < slot.limit:
                    return self._claim(slot)
            slot = await self._connect(target, login)
            self._conns.setdefault(key, []).append(slot)
            return self._claim(slot)

    def mark_full(self, lease: Lease) -> None:
        """The target refused a channel (MaxSessions): stop giving out this one."""
        lease.slot.limit = max(1, lease.slot.channels - 1)

    def _claim(self, slot: _Conn) -> Lease:
        slot.channels += 1
        if slot.idle:
            slot.idle.cancel()
            slot.idle = None
        return Lease(self, slot)

    def _release(self, slot: _Conn) -> None:
        slot.channels -= 1
        if slot.channels <= 0 and not slot.closed:
            loop = asyncio.get_running_loop()
            slot.idle = loop.call_later(self.idle_seconds, self._expire, slot)

    @staticmethod
    def _expire(slot: _Conn) -> None:
        slot.closed = True  # before close(): no lease may pick a closing connection
        slot.conn.close()

    def _private_key(self, target: Target, login: str) -> asyncssh.SSHKey:
        path = target.logins[login].key_file
        cache_key = str(path)
        if cache_key not in self._keys:
            self._keys[cache_key] = load_private_key(path)
        return self._keys[cache_key]

    async def _connect(self, target: Target, login: str, *, check_shell: bool = True) -> _Conn:
        where = f"{target.name} ({target.host}:{target.port})"
        try:
            pinned = [asyncssh.import_public_key(k) for k in target.host_keys]
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise UpstreamError(f"pinned host key of {target.name} is unreadable: {exc}") from None
        holder: dict[str, _Conn] = {}

        def lost() -> None:
            slot = holder.get("slot")
            if slot:
                slot.closed = True
                conns = self._conns.get((target.name, login), [])
                if slot in conns:
                    conns.remove(slot)

        try:
            conn, _ = await asyncio.wait_for(
                asyncssh.create_connection(
                    lambda: _Client(lost),
                    target.host,
                    target.port,
                    username=login,
                    client_keys=[self._private_key(target, login)],
                    known_hosts=(pinned, [], []),
                    agent_path=None,
                    config=None,
                    preferred_auth=["publickey"],
                    connect_timeout=self.connect_timeout,
                    keepalive_interval=30,
                    **common_options(),
                ),
                self.connect_timeout,
            )
        except asyncssh.HostKeyNotVerifiable:
            raise HostKeyChangedError(
                f"host key changed on {where}: it does not match the pinned key. "
                f"If the change is expected, an administrator re-pins it with "
                f"`bastion target add {target.name} --scan ...`"
            ) from None
        except asyncssh.PermissionDenied:
            raise UpstreamError(f"{where} refused the bastion's key for login {login!r}") from None
        except TimeoutError:
            raise UpstreamError(
                f"{where} did not answer within {self.connect_timeout:g} s"
            ) from None
        except ConnectionRefusedError:
            raise UpstreamError(f"{where} is down: connection refused") from None
        except (OSError, asyncssh.Error) as exc:
            raise UpstreamError(f"cannot connect to {where}: {exc}") from None
        slot = _Conn(conn, self.channels_per_connection)
        holder["slot"] = slot
        try:
            slot.shell = await probe_shell(conn, login, self.connect_timeout)
            if check_shell:
                _check_shell(target, login, slot.shell)
        except BaseException:
            slot.closed = True
            conn.close()
            raise
        log.info("upstream connected target=%s login=%s shell=%s", target.name, login, slot.shell)
        return slot

    def close(self) -> None:
        for conns in self._conns.values():
            for slot in conns:
                slot.conn.close()
        self._conns.clear()


class TargetUpstream:
    """Runs commands on one target as one login, for one identity (``flows.Upstream``)."""

    def __init__(self, pool: UpstreamPool, target: Target, login: str, owner: str):
        self.pool = pool
        self.target = target
        self.login = login
        self.owner = owner

    async def start(
        self,
        command: str,
        *,
        env: Mapping[str, str],
        term: Terminal | None,
        sink: RemoteSink,
    ) -> _RemoteSession:
        # The one place a channel is opened on a target: an exec with a command, always.
        # asyncssh turns an empty command into a shell request, which would hand the
        # target's login shell whatever the client types.
        if not command or not command.strip():
            raise UpstreamError("refusing to open a channel on the target without a command")
        give_back = await self.pool.turn(self.owner)
        try:
            return await self._open(command, env, term, sink, give_back)
        except BaseException:
            give_back()
            raise

    async def start_sftp(self, *, sink: RemoteSink) -> _RemoteSession:
        """Open the target's SFTP server (subsystem ``sftp``) for the bastion's relay."""
        give_back = await self.pool.turn(self.owner)
        try:
            return await self._open("", {}, None, sink, give_back, subsystem="sftp")
        except BaseException:
            give_back()
            raise

    async def _open(
        self,
        command: str,
        env: Mapping[str, str],
        term: Terminal | None,
        sink: RemoteSink,
        give_back: Callable[[], None],
        subsystem: str | None = None,
    ) -> _RemoteSession:
        name = self.target.name
        for attempt in range(3):
            lease = await self.pool.lease(self.target, self.login)
            session = _RemoteSession(sink, name, lease.release)
            opening = asyncio.ensure_future(
                self._create(lease, session, command, env, term, subsystem)
            )
            try:
                await asyncio.shield(opening)
            except asyncio.CancelledError:
                # the requester left while the channel opened: close it when it is
                # confirmed (its close releases the lease), or release now if it fails
                opening.add_done_callback(functools.partial(_abandon, session=session, lease=lease))
                raise
            except asyncssh.ChannelOpenError as exc:
                self.pool.mark_full(lease)
                lease.release()
                if attempt == 2:
                    raise UpstreamError(f"{name} refused a session: {exc.reason}") from None
                continue
            except (OSError, asyncssh.Error) as exc:
                lease.release()
                raise UpstreamError(f"lost the connection to {name}: {exc}") from None
            lease.on_release = give_back  # the channel's close gives the turn back
            if lease.released:  # it closed before we got here
                give_back()
            return session
        raise UpstreamError(f"{name} refused a session")

    async def _create(
        self,
        lease: Lease,
        session: _RemoteSession,
        command: str,
        env: Mapping[str, str],
        term: Terminal | None,
        subsystem: str | None = None,
    ) -> None:
        if subsystem is not None:
            if subsystem != "sftp":
                raise UpstreamError(f"the bastion opens no {subsystem!r} subsystem on targets")
            await lease.conn.create_session(
                lambda: session,
                subsystem="sftp",
                encoding=None,
                window=WINDOW,
                max_pktsize=MAX_PKTSIZE,
            )
            return
        # () means "no PTY" to asyncssh (with config=None), as the client asked.
        term_type: str | tuple[()] = ()
        term_size: tuple[int, int, int, int] | tuple[()] = ()
        term_modes: Mapping[int, int] | tuple[()] = ()
        if term is not None:
            term_type = term.type
            term_size = (term.width, term.height, term.pixwidth, term.pixheight)
            term_modes = term.modes
        await lease.conn.create_session(
            lambda: session,
            command,
            env=dict(env),  # type: ignore[arg-type]
            encoding=None,
            window=WINDOW,
            max_pktsize=MAX_PKTSIZE,
            term_type=term_type,  # type: ignore[arg-type]
            term_size=term_size,  # type: ignore[arg-type]
            term_modes=term_modes,  # type: ignore[arg-type]
            # asyncssh asks for a PTY only when the type is non-empty; a client with no
            # TERM asked for one with an empty type, and gets it
            request_pty="force" if term is not None else False,
        )


def _abandon(task: asyncio.Future[None], session: _RemoteSession, lease: Lease) -> None:
    if task.cancelled() or task.exception() is not None:
        lease.release()
    else:
        session.close()  # connection_lost follows and releases the lease


async def read_login_shell(target: Target, login: str, timeout: float = 10.0) -> str:
    """Connect once with the stored key and pinned host key; the login's shell."""
    pool = UpstreamPool(connect_timeout=timeout)
    slot = await pool._connect(target, login, check_shell=False)
    slot.conn.close()
    return slot.shell


def shell_is_read(shell: str) -> bool:
    """Whether the bastion's reader reads commands as this shell does."""
    return posixpath.basename(shell) in READ_SHELLS


async def probe_shell(conn: asyncssh.SSHClientConnection, login: str, timeout: float) -> str:
    """The login shell of ``login`` as the target's passwd database says."""
    if not login.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise UpstreamError(f"login name {login!r} cannot be looked up safely")
    probe = f"getent passwd {login} || grep '^{login}:' /etc/passwd"
    try:
        result = await asyncio.wait_for(conn.run(probe, check=False, encoding="utf-8"), timeout)
    except (TimeoutError, OSError, asyncssh.Error) as exc:
        raise UpstreamError(f"cannot read the login shell of {login}: {exc}") from None
    for line in str(result.stdout or "").splitlines():
        fields = line.strip().split(":")
        if len(fields) >= 7 and fields[0] == login:
            return fields[6].strip()
    raise UpstreamError(f"the target does not say which login shell {login} has")


def _check_shell(target: Target, login: str, shell: str) -> None:
    entry = target.logins[login]
    recorded = getattr(entry, "shell", "") or ""
    if recorded and recorded != shell:
        raise UpstreamError(
            f"the login shell of {login}@{target.name} is now {shell}, not {recorded} as "
            f"recorded: an administrator checks it and runs `bastion target add {target.name} "
            f"--login {login} ...` again"
        )
    if posixpath.basename(shell) in READ_SHELLS or getattr(entry, "shell_opt_in", False):
        return
    raise UpstreamError(
        f"the login shell of {login}@{target.name} is {shell or 'unknown'}: the bastion "
        "reads commands as bash does and will not decide for another shell (an "
        "administrator may accept it with shell_opt_in = true on that login)"
    )


async def scan_host_key(host: str, port: int, timeout: float = 10.0) -> asyncssh.SSHKey:
    """Fetch a server's host key once, to pin it (`bastion target add --scan`)."""
    try:
        key = await asyncio.wait_for(
            asyncssh.get_server_host_key(host, port, server_host_key_algs=["ssh-ed25519"]),
            timeout,
        )
        if key is None:
            key = await asyncio.wait_for(asyncssh.get_server_host_key(host, port), timeout)
    except (TimeoutError, OSError, asyncssh.Error) as exc:
        raise UpstreamError(f"cannot fetch the host key of {host}:{port}: {exc}") from None
    if key is None:
        raise UpstreamError(f"{host}:{port} offered no host key")
    return key


__all__ += ["MAX_PKTSIZE", "WINDOW"]
