"""The listener, authentication, and routing of channels.

Outer connection (the client's TCP connection to the bastion):
- jump mode: the SSH user name is a principal of the certificate; ``direct-tcpip``
  requests to a target are terminated by an inner SSH server running over that channel
  (never a raw TCP tunnel), presenting a host certificate for the target's name;
- direct mode: the user name is ``login@target`` and sessions go to that target;
- reserved user names (``control.RESERVED_USERS``): the bastion's own verbs (approvals),
  never a target.
Inner connection: the client authenticates again with the same certificate; its user
name is the login on the target. Agent and X11 forwarding and remote forwards (``-R``)
are refused; a ``direct-tcpip`` request naming no target is a TCP forward, refused unless
a ``[[forwards]]`` rule allows it (``forward.py``).

A jump the identity may not make (no login on that target, a certificate without
``permit-port-forwarding``, over its limits) is still answered by an inner server that
accepts the same certificate and then says why on stderr for every session: ssh shows
stderr whatever its LogLevel, while a refused channel shows only "stdio forwarding
failed". Such an inner connection never reaches a target.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncssh
from asyncssh.packet import String

from ..approvals import ApprovalService
from ..config import Config, Target
from ..errors import AuthError
from ..flows.base import EXIT_BASTION_ERROR, Flow
from ..identity import Identity
from ..identity.issue import Issuer
from ..logs import ContextLog
from ..record import AuditLog
from ..storage import Store
from .adapter import SessionAdapter
from .certs import TrustedCA, issue_host_cert, verify_user_cert
from .channel import BastionServerChannel
from .control import RESERVED_USERS, ControlSession
from .forward import ForwardSession, forward_refusal, target_addresses
from .login import LOGIN_USER, LoginSession
from .login_auth import (
    check_login_key,
    kbdint_challenge,
    kbdint_response,
    kbdint_supported,
    plain_key_auth,
    plain_login_enabled,
    revocation_refusal,
)
from .routes import Route, make_flow
from .transport import CoalescingTransport
from .tuning import MAX_PKTSIZE, WINDOW, common_options
from .upstream import UpstreamPool
from .validate import clip

__all__ = ["BastionConnection", "BastionServer", "Services", "start_listener"]

log = logging.getLogger("bastion.server")
_conn_ids = itertools.count(1)
_HOST_CERT_TTL = 7 * 86400
MSG_IGNORE = 2  # RFC 4253
_EMPTY_STRING = String(b"")


@dataclass
class Services:
    """Everything a connection needs, built once per process."""

    config: Config
    pool: UpstreamPool
    audit: AuditLog
    store: Store
    approvals: ApprovalService
    host_key: asyncssh.SSHKey
    host_ca: asyncssh.SSHKey
    cas: list[TrustedCA]
    issuer: Issuer | None = None  # certificate issuance for OIDC tokens (bastion.identity)
    window: int = WINDOW
    max_pktsize: int = MAX_PKTSIZE
    connections: set[BastionConnection] = field(default_factory=set)
    sessions: set[SessionAdapter] = field(default_factory=set)
    sessions_by_user: Counter[str] = field(default_factory=Counter)
    jumps_by_user: Counter[str] = field(default_factory=Counter)
    _host_options: dict[tuple[str, ...], tuple[float, asyncssh.SSHServerConnectionOptions]] = field(
        default_factory=dict
    )

    def server_options(
        self, names: list[str], ttl: int = _HOST_CERT_TTL
    ) -> asyncssh.SSHServerConnectionOptions:
        cert = issue_host_cert(self.host_ca, self.host_key, names, ttl)
        return asyncssh.SSHServerConnectionOptions(
            server_host_keys=[(self.host_key, cert)],
            encoding=None,
            line_editor=False,
            allow_pty=True,
            agent_forwarding=False,
            x11_forwarding=False,
            kbdint_auth=self.issuer is not None and bool(self.config.identity.ssh_login_provider),
            password_auth=False,
            gss_host=None,
            login_timeout=self.config.server.login_timeout,
            keepalive_interval=60,
            server_version="bastion",  # not the library and its version: nothing to target
            **common_options(),
        )

    def host_options(self, names: tuple[str, ...]) -> asyncssh.SSHServerConnectionOptions:
        """Options presenting a host certificate for ``names``, renewed a day before expiry,
        so a bastion that runs for weeks never presents an expired certificate."""
        cached = self._host_options.get(names)
        if cached and cached[0] > time.time() + 86400:
            return cached[1]
        options = self.server_options(list(names))
        self._host_options[names] = (time.time() + _HOST_CERT_TTL, options)
        return options


class BastionConnection(asyncssh.SSHServerConnection):
    """An SSH server connection whose certificate checks are the bastion's own.

    asyncssh checks a certificate's principal against the SSH user name, which direct
    mode (``login@target``) cannot satisfy, and it cannot say *why* a certificate was
    refused; so public-key authentication is decided here, by ``BastionServer``.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        options: asyncssh.SSHServerConnectionOptions,
        owner_factory: Callable[[], BastionServer],
    ):
        super().__init__(loop, options, None, None)
        self._protocol_factory = owner_factory

    def send_packet(self, pkttype: int, *args: bytes, handler: Any = None) -> None:
        # asyncssh puts an empty IGNORE packet before every packet, a defence for CBC
        # ciphers (RFC 4251, 9.3.1). This server offers only AES-GCM, which needs none;
        # skipping them saved 15-18% of the bastion's CPU on bulk transfers.
        if pkttype == MSG_IGNORE and args == (_EMPTY_STRING,):
            return
        super().send_packet(pkttype, *args, handler=handler)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        # A TCP socket, or for an inner connection the outer jump channel: there,
        # gathering a burst of inner packets into one write also lets the outer channel
        # cut it into full packets, instead of a full one and a tiny remainder for each
        # inner packet (an inner packet is a little larger than the outer maximum).
        transport = CoalescingTransport(transport, self._loop)  # type: ignore[assignment]
        super().connection_made(transport)

    async def validate_public_key(
        self, username: str, key_data: bytes, msg: bytes, signature: bytes
    ) -> bool:
        owner: BastionServer = self._owner  # type: ignore[assignment]
        if plain_login_enabled(owner) and not _is_certificate(key_data):
            signed = String(self._session_id) + msg if msg else b""
            return await plain_key_auth(owner, username, key_data, signed, signature)
        checked = owner.check_key(username, key_data)
        if checked is None:
            return False
        if not msg:
            return True  # the client only asks whether this key would do
        if not checked.key.verify(String(self._session_id) + msg, signature):
            return False
        if not await revocation_refusal(owner, username, checked):
            return False
        owner.accept(username, checked)
        return True

    def new_session_channel(self, limits: Any) -> BastionServerChannel:
        """A session channel with the bastion's request checks and bounds."""
        self._update_recv_pktlen(MAX_PKTSIZE)  # type: ignore[attr-defined]
        return BastionServerChannel(
            self,
            self._loop,
            window=WINDOW,
            max_pktsize=MAX_PKTSIZE,
            max_env=limits.env_per_channel,
            max_env_bytes=limits.env_bytes_per_channel,
        )


@dataclass(frozen=True)
class _Checked:
    """A certificate that passed every check but proof of possession."""

    key: asyncssh.SSHKey
    identity: Identity
    blob: bytes
    target: Target | None
    login: str | None
    control: bool = False
    refusal: str = ""  # authenticated, but every session only hears this sentence
    issuing: bool = False  # the reserved user bastion-login: a key asking for a certificate


class BastionServer(asyncssh.SSHServer):
    """Per-connection policy: who it is, where it may go, and which sessions it gets."""

    def __init__(
        self,
        services: Services,
        parent: BastionServer | None = None,
        target: Target | None = None,
        refusal: str = "",
    ):
        self.services = services
        self.parent = parent
        self.conn_id = next(_conn_ids)
        self.label = (
            f"conn={self.conn_id}" if parent is None else f"conn={parent.conn_id}.{self.conn_id}"
        )
        self.conn: BastionConnection | None = None
        self.peer: str = parent.peer if parent else "?"
        self.identity: Identity | None = None
        self.cert_blob: bytes | None = None
        self.target: Target | None = target
        self.login: str | None = None
        self.control = False
        self.issuing = False
        self.login_key: asyncssh.SSHKey | None = None
        self.proven_keys: list[asyncssh.SSHKey] = []  # plain keys signed with, not yet bound
        self.device_flow: Any = None  # keyboard-interactive sign-in under way
        self.refusal = refusal
        self.channels = 0
        self._told = False
        self._told_cert = False
        self.log = ContextLog("bastion.server", self.label)

    # ---- connection ----
    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn  # type: ignore[assignment]
        self.services.connections.add(conn)  # type: ignore[arg-type]
        if self.parent is None:
            peer = conn.get_extra_info("peername") or ("?", 0)
            self.peer = str(peer[0])
            self.log.info("connection from %s:%s", peer[0], peer[1])
            self.services.audit.write("connection", conn=self.label, peer=f"{peer[0]}:{peer[1]}")
        else:
            self.log.info("jump to %s", self.target.name if self.target else "?")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.services.connections.discard(self.conn)
        if self.parent is not None:
            self.parent.channels -= 1
            if self.parent.identity is not None:
                _decrement(self.services.jumps_by_user, self.parent.identity.user)
        self.log.info("closed%s", f" ({exc})" if exc else "")

    # ---- authentication ----
    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def check_key(self, username: str, key_data: bytes) -> _Checked | None:
        """Verify the offered certificate and route; None (with a reason told) if refused."""
        try:
            if self.parent is None:
                return self._check_outer(username, key_data)
            return self._check_inner(username, key_data)
        except AuthError as exc:
            self._refuse(username, str(exc), certificate=_is_certificate(key_data))
            return None

    def accept(self, username: str, checked: _Checked) -> None:
        """The client proved it holds the key: this identity and route are now ours."""
        self.identity, self.cert_blob = checked.identity, checked.blob
        self.target, self.login = checked.target, checked.login
        self.control = checked.control
        self.issuing, self.login_key = checked.issuing, checked.key if checked.issuing else None
        self.refusal = self.refusal or checked.refusal
        where = f"{self.login}@{self.target.name}" if self.target and self.login else "jump"
        if self.control:
            where = f"control ({username})"
        if self.issuing:
            where = "certificate request"
        self.log.info("auth ok %s -> %s", self.identity.describe(), where)
        self.services.audit.write(
            "auth",
            conn=self.label,
            result="ok" if not self.refusal else "refused",
            reason=self.refusal or None,
            user=self.identity.user,
            groups=list(self.identity.groups),
            key_id=self.identity.key_id,
            serial=self.identity.serial,
            ca=self.identity.ca,
            fingerprint=self.identity.fingerprint,
            ssh_user=clip(username),
            target=self.target.name if self.target else None,
            login=self.login,
        )

    def kbdint_auth_supported(self) -> bool:
        return kbdint_supported(self)

    async def get_kbdint_challenge(self, username: str, lang: str, submethods: str) -> Any:
        return await kbdint_challenge(self, username)

    async def validate_kbdint_response(self, username: str, responses: Any) -> Any:
        return await kbdint_response(self, username)

    def _check_outer(self, username: str, key_data: bytes) -> _Checked:
        cas = self.services.cas
        if username == LOGIN_USER:
            key, identity = check_login_key(key_data)
            return _Checked(key, identity, key_data, None, None, issuing=True)
        if username in RESERVED_USERS:
            cert, identity = verify_user_cert(key_data, None, self.peer, cas)
            return _Checked(cert.key, identity, key_data, None, None, control=True)
        try:
            cert, identity = verify_user_cert(key_data, username, self.peer, cas)
            return _Checked(cert.key, identity, key_data, None, None)
        except AuthError as principal_error:
            if "@" not in username or "not a principal" not in str(principal_error):
                raise
        login, _, target_name = username.rpartition("@")
        cert, identity = verify_user_cert(key_data, None, self.peer, cas)
        target = self.services.config.targets.get(target_name)
        if target is None:
            raise AuthError(f"unknown target {clip(target_name, 64)!r}")
        refusal = _login_refusal(identity, target, login)
        return _Checked(cert.key, identity, key_data, target, login, refusal=refusal)

    def _check_inner(self, username: str, key_data: bytes) -> _Checked:
        parent = self.parent
        assert parent is not None and self.target is not None
        if parent.identity is None or key_data != parent.cert_blob:
            raise AuthError(
                "the connection to the target must use the same certificate as the "
                "connection to the bastion"
            )
        cert, _ = verify_user_cert(key_data, None, self.peer, self.services.cas)  # still valid?
        refusal = self.refusal or _login_refusal(parent.identity, self.target, username)
        return _Checked(cert.key, parent.identity, key_data, self.target, username, refusal=refusal)

    def _refuse(self, username: str, reason: str, *, certificate: bool) -> None:
        """Tell the client why, once: the first certificate's reason, or that a plain key
        is not enough (never after a certificate's reason, which says more)."""
        self.log.warning("auth refused user=%r: %s", clip(username, 64), reason)
        self.services.audit.write(
            "auth", conn=self.label, result="refused", ssh_user=clip(username), reason=reason
        )
        if self._told_cert or (self._told and not certificate):
            return
        self._told = True
        self._told_cert = certificate
        try:
            assert self.conn is not None
            self.conn.send_auth_banner(f"bastion: {reason}\r\n")
        except (OSError, asyncssh.Error, AssertionError):
            pass

    # ---- channels ----
    def _expired(self) -> str:
        """A connection outlives its certificate (ControlPersist): new channels don't."""
        if self.identity is None or time.time() < self.identity.valid_before:
            return ""
        self.log.warning("refused a channel: the certificate of %s expired", self.identity.user)
        self.services.audit.write(
            "channel", conn=self.label, user=self.identity.user, result="certificate expired"
        )
        return (
            "your certificate expired: run `bastion-cli login` for a fresh one "
            "and reconnect (`ssh -O exit HOST` closes a ControlMaster)"
        )

    def _channel_refusal(self) -> str:
        limits = self.services.config.limits
        if self.channels >= limits.channels_per_connection:
            return f"too many channels on one connection (at most {limits.channels_per_connection})"
        return ""

    def session_requested(self) -> Any:
        if self.identity is None:
            return False
        refusal = self.refusal or self._expired() or self._channel_refusal()
        if refusal:
            self._audit_refusal("session", refusal)
            return _MessageSession([f"bastion: {refusal}"], EXIT_BASTION_ERROR)
        if self.control:
            return ControlSession(self.services, self.identity, self.label)
        if self.issuing and self.login_key is not None:
            return LoginSession(self.services, self.login_key, self.label)
        if self.target is None or self.login is None:
            return _MessageSession(_help_lines(self), 1)
        user = self.identity.user
        limits = self.services.config.limits
        if self.services.sessions_by_user[user] >= limits.sessions_per_identity:
            refusal = (
                f"too many sessions at once for {user} (at most {limits.sessions_per_identity}); "
                "wait for some to end"
            )
            self._audit_refusal("session", refusal)
            return _MessageSession([f"bastion: {refusal}"], EXIT_BASTION_ERROR)
        assert self.conn is not None
        route = Route(
            services=self.services,
            identity=self.identity,
            target=self.target,
            login=self.login,
            conn_label=self.label,
            peer=self.peer,
        )
        adapter = SessionAdapter(
            lambda a, request: self._start_flow(route, a, request),
            allow_pty="pty" in self.identity.permits,
            on_close=self._session_closed,
        )
        self.channels += 1
        self.services.sessions_by_user[user] += 1
        self.services.sessions.add(adapter)
        return self.conn.new_session_channel(limits), adapter

    def _start_flow(self, route: Route, adapter: SessionAdapter, request: Any) -> Flow:
        return make_flow(route, adapter, request)

    def _session_closed(self, adapter: SessionAdapter) -> None:
        self.channels -= 1
        self.services.sessions.discard(adapter)
        if self.identity is not None:
            _decrement(self.services.sessions_by_user, self.identity.user)

    def _audit_refusal(self, kind: str, reason: str, **fields: Any) -> None:
        self.log.warning("refused a %s: %s", kind, reason)
        self.services.audit.write(
            kind,
            conn=self.label,
            user=self.identity.user if self.identity else None,
            result="refused",
            reason=reason,
            **fields,
        )

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> Any:
        prohibited = asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED
        if self.parent is not None or self.target is not None or self.identity is None:
            self._audit_refusal("forward", "port forwarding is not allowed", dest=clip(dest_host))
            raise asyncssh.ChannelOpenError(prohibited, "port forwarding is not allowed")
        if self.control or self.issuing or self.refusal:
            raise asyncssh.ChannelOpenError(prohibited, "this connection cannot jump")
        target = self.services.config.targets.get(dest_host)
        if target is None:
            return self._forward(dest_host, dest_port)
        if dest_port not in (22, target.port):
            reason = f"target {target.name} is reached on port 22 through the bastion"
            self._audit_refusal("jump", reason, target=target.name)
            raise asyncssh.ChannelOpenError(prohibited, reason)
        channel_refusal = self._channel_refusal()
        if channel_refusal:
            self._audit_refusal("jump", channel_refusal, target=target.name)
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_RESOURCE_SHORTAGE, channel_refusal)
        refusal = self._jump_refusal(target)
        self.services.audit.write(
            "jump",
            conn=self.label,
            user=self.identity.user,
            target=target.name,
            result="ok" if not refusal else "refused",
            reason=refusal or None,
        )
        assert self.conn is not None
        loop = asyncio.get_running_loop()
        inner = BastionConnection(
            loop,
            self.services.host_options((target.name,)),
            lambda: BastionServer(self.services, parent=self, target=target, refusal=refusal),
        )
        chan = self.conn.create_tcp_channel(
            window=self.services.window, max_pktsize=self.services.max_pktsize
        )
        self.channels += 1
        self.services.jumps_by_user[self.identity.user] += 1
        return chan, inner

    def _forward(self, dest_host: str, dest_port: int) -> ForwardSession:
        """A direct-tcpip request naming no target: an allowed forward, or refused."""
        assert self.identity is not None
        prohibited = asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED
        config = self.services.config
        refusal, rule = forward_refusal(config, self.identity, dest_host, dest_port)
        refusal = refusal or self._expired() or self._channel_refusal()
        if refusal:
            if dest_port == 22 and not config.forwards:
                name = clip(dest_host, 64)
                refusal = f"unknown target {name!r}: `ssh {self.identity.user}@BASTION` lists yours"
                self._audit_refusal("jump", refusal, target=name)
            else:
                self._audit_refusal("forward", refusal, dest=f"{clip(dest_host, 64)}:{dest_port}")
            raise asyncssh.ChannelOpenError(prohibited, refusal)
        self.log.info("forward to %s:%s allowed by %s", clip(dest_host, 64), dest_port, rule)
        who = {"conn": self.label, "user": self.identity.user}
        self.channels += 1

        def closed() -> None:
            self.channels -= 1

        return ForwardSession(
            dest_host,
            dest_port,
            rule,
            who,
            self.services.audit,
            closed,
            lambda: target_addresses(config),
        )

    def _jump_refusal(self, target: Target) -> str:
        """Why this identity may not jump to ``target`` now ("" if it may)."""
        assert self.identity is not None
        ident = self.identity
        limits = self.services.config.limits
        if "port-forwarding" not in ident.permits:
            return (
                "your certificate does not permit port forwarding (permit-port-forwarding), "
                "which a jump is"
            )
        expired = self._expired()
        if expired:
            return expired
        if not target.logins_for(ident.groups):
            return f"no login on {target.name} is allowed for {ident.user}"
        if self.services.jumps_by_user[ident.user] >= limits.jumps_per_identity:
            return f"too many jumps at once for {ident.user} (at most {limits.jumps_per_identity})"
        return ""

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        self._audit_refusal("forward", "remote port forwarding is not allowed")
        return False


def _decrement(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


def _is_certificate(key_data: bytes) -> bool:
    length = int.from_bytes(key_data[:4], "big")
    return 0 < length < 100 and key_data[4 : 4 + length].endswith(b"-cert-v01@openssh.com")


def _login_refusal(identity: Identity, target: Target, login: str) -> str:
    """Why ``identity`` may not use ``login`` on ``target`` ("" if it may)."""
    entry = target.logins.get(login)
    if entry is not None and entry.allows(identity.groups):
        return ""
    allowed = target.logins_for(identity.groups)
    hint = f"; you may use: {', '.join(allowed)}" if allowed else ""
    return (
        f"login {clip(login, 40)!r} on {target.name} is not allowed for {identity.user} "
        f"(groups: {', '.join(identity.groups) or 'none'}){hint}"
    )


class _MessageSession(asyncssh.SSHServerSession[bytes]):
    """A session on the bastion itself that only says something and exits: the help
    in jump mode, or why a session is refused (the ssh mux client shows no reason
    for a refused channel, but shows stderr)."""

    def __init__(self, lines: list[str], status: int):
        self.lines, self.status = lines, status
        self.chan: asyncssh.SSHServerChannel[bytes] | None = None

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:  # type: ignore[override]
        self.chan = chan

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        return True

    def pty_requested(self, term_type: Any, term_size: Any, term_modes: Any) -> bool:
        return True

    def session_started(self) -> None:
        assert self.chan is not None
        self.chan.write_stderr(("\r\n".join(self.lines) + "\r\n").encode())
        self.chan.exit(self.status)

    def eof_received(self) -> bool:
        return True  # our answer is on its way: no half-close before it


def _help_lines(server: BastionServer) -> list[str]:
    assert server.identity is not None
    ident = server.identity
    lines = [
        f"bastion: you are {ident.describe()}.",
        "This is a bastion: reach a target with  ssh -J USER@BASTION LOGIN@TARGET",
    ]
    for target in server.services.config.targets.values():
        logins = target.logins_for(ident.groups)
        if logins:
            lines.append(f"  {target.name}: {', '.join(logins)}")
    return lines


async def start_listener(services: Services, host: str, port: int) -> asyncio.AbstractServer:
    """Listen for clients; one BastionConnection per TCP connection."""
    loop = asyncio.get_running_loop()
    names = tuple(services.config.server.hostnames)

    def factory() -> BastionConnection:
        return BastionConnection(
            loop, services.host_options(names), lambda: BastionServer(services)
        )

    return await loop.create_server(factory, host, port, reuse_address=True)
