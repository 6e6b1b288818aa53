"""Run the bastion: build the shared services from a config, listen, drain on SIGTERM.

Before listening, the policy's own ``[[tests]]`` run: a failing one stops the start
(a policy that does not do what its author wrote down never guards a target). A target
that is this very machine is named at start-up: there, commands run where the
bastion's keys and recordings live.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import socket
from typing import Any

import asyncssh

from .approvals import ApprovalService, ApprovalSettings
from .config import Config
from .errors import ConfigError
from .record import AuditLog
from .ssh.certs import TrustedCA, issue_host_cert, load_private_key
from .ssh.server import Services, start_listener
from .ssh.upstream import UpstreamPool
from .storage import SQLiteStore

__all__ = ["build_services", "check_policy_tests", "local_targets", "run_until_stopped", "serve"]

log = logging.getLogger("bastion")


def check_policy_tests(config: Config) -> None:
    """Run the policy's [[tests]]; a failure is a ConfigError naming the entry (with a
    generous analysis bound, so a busy machine cannot fail a test)."""
    policy = config.policy.for_tests()
    for test in config.policy.tests:
        decision, ok = test.run(policy)
        if not ok:
            want = test.expect + (f" ({test.rule})" if test.rule else "")
            raise config.source.error(
                ("tests", test.index),
                f"policy test {test.name or test.command!r} expects {want} but the policy "
                f"gives {decision.reason}; the bastion does not start on a failing policy test",
            )


def local_targets(config: Config) -> list[str]:
    """Targets whose address is this machine (loopback or one of its own names)."""
    own = {"localhost", socket.gethostname(), socket.getfqdn()}
    found = []
    for target in config.targets.values():
        host = target.host.strip("[]")
        try:
            if ipaddress.ip_address(host).is_loopback:
                found.append(target.name)
                continue
        except ValueError:
            pass
        if host in own:
            found.append(target.name)
    return found


def guard_home(config: Config) -> list[str]:
    """On targets that are this machine, hold commands naming a path in the bastion's
    home (keys, recordings, state): a best effort on static words, documented as such;
    a path only known at run time is not guessed."""
    from .policy.effects import resolve_path
    from .policy.rules import Rule

    names = local_targets(config)
    if not names:
        return names
    home = str(config.home).rstrip("/")

    def names_home(cmd: Any) -> bool:
        words = [w for w in cmd.words] + [target for _, target in cmd.redirects]
        for word in words:
            if word.dynamic:
                continue
            for value in {word.value, word.value.partition("=")[2]}:
                path = resolve_path(value, cmd.cwd) if value else None
                if path and (path == home or path.startswith(home + "/")):
                    return True
        return False

    rule = Rule(
        "bastion-home",
        "review",
        f"names the bastion's own home ({home}) on this machine",
        len(config.policy.rules),
        {"targets": names},
    )
    rule.compile()
    rule.checks.append(names_home)
    config.policy.rules.insert(0, rule)
    config.policy.scoped.cache_clear()
    return names


def build_services(config: Config) -> Services:
    """Load keys and open stores; raises ConfigError on anything unusable."""
    check_policy_tests(config)
    guard_home(config)
    paths = config.paths
    user_ca = load_private_key(paths.user_ca)
    cas = [TrustedCA("bastion user CA", user_ca.convert_to_public())]
    for i, ca in enumerate(config.trusted_cas):
        try:
            key = asyncssh.import_public_key(ca.public_key)
        except (asyncssh.KeyImportError, ValueError) as exc:
            error = config.source.error(("trusted_ca", i, "public_key"), f"unreadable key: {exc}")
            raise error from None
        cas.append(TrustedCA(ca.name, key, ca.default_groups))
    for target in config.targets.values():
        for i, key_text in enumerate(target.host_keys):
            try:
                asyncssh.import_public_key(key_text)
            except (asyncssh.KeyImportError, ValueError) as exc:
                raise ConfigError(
                    f"pinned host key {i} of target {target.name!r} is unreadable: {exc}",
                    path=str(paths.config),
                ) from None
        for login in target.logins.values():
            load_private_key(login.key_file)
    host_key = load_private_key(paths.host_key)
    host_ca = load_private_key(paths.host_ca)
    # Keep the host certificate on disk in step with [server] hostnames.
    cert = issue_host_cert(host_ca, host_key, list(config.server.hostnames))
    cert.write_certificate(str(paths.host_cert))
    config.recording.dir.mkdir(parents=True, exist_ok=True)
    config.recording.dir.chmod(0o750)
    audit = AuditLog(paths.audit_log, redact=config.masking.for_audit().mask_text)
    store = SQLiteStore(paths.database)
    approvals = ApprovalService(
        store,
        ApprovalSettings(
            ttl=config.approvals.ttl,
            approver_group=config.approvals.approver_group,
            notify_url=config.approvals.notify_url,
            owner=config.server.name,
        ),
        audit,
    )
    from .ssh.login import build_issuer

    return Services(
        issuer=build_issuer(config.identity, store, audit, user_ca),
        config=config,
        pool=UpstreamPool(
            connect_timeout=config.server.connect_timeout,
            idle_seconds=config.server.upstream_idle_seconds,
            channels_per_connection=config.server.upstream_channels_per_connection,
            channels_per_identity=config.limits.upstream_channels_per_identity,
        ),
        audit=audit,
        store=store,
        approvals=approvals,
        host_key=host_key,
        host_ca=host_ca,
        cas=cas,
    )


async def run_until_stopped(
    services: Services,
    host: str,
    port: int,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop``), then drain: close sessions and casts."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    for name in local_targets(services.config):
        log.warning(
            "target %s is this machine: commands sent to it run where the bastion's keys "
            "and recordings live (%s); the policy holds reads of that directory",
            name,
            services.config.home,
        )
    policy = services.config.policy
    if policy.structure_check and not policy.checker.usable():
        log.warning(
            "%s cannot parse without running (bash >= 5.2 with --pretty-print is needed): "
            "every command outside plain words will be held (on_unknown); set "
            "[policy] bash to such a bash",
            policy.bash,
        )
    await services.approvals.start()
    revocations = _watch_revocations(services)
    server = await start_listener(services, host, port)
    bound = server.sockets[0].getsockname()  # type: ignore[attr-defined]
    log.info("listening on %s:%s (home %s)", bound[0], bound[1], services.config.home)
    services.audit.write("start", listen=f"{bound[0]}:{bound[1]}")
    if ready:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("stopping: closing %d connections", len(services.connections))
        revocations.cancel()
        server.close()
        for session in list(services.sessions):
            session.shutdown()
        await asyncio.sleep(0.1)  # let the exit messages go out
        for conn in list(services.connections):
            conn.close()
        await asyncio.sleep(0.2)  # let sessions write their closing events
        for conn in list(services.connections):
            conn.abort()
        services.pool.close()
        await services.approvals.close()
        services.audit.write("stop")
        services.audit.close()
        await services.store.close()


def _watch_revocations(services: Services) -> asyncio.Task[None]:
    """Close live connections whose certificate gets revoked (bastion.identity)."""
    from .identity.revocation import watch
    from .ssh.login_auth import live_identities

    return asyncio.get_running_loop().create_task(
        watch(services.store, lambda: live_identities(services))
    )


def serve(config: Config, host: str, port: int) -> None:
    services = build_services(config)
    asyncio.run(run_until_stopped(services, host, port))
