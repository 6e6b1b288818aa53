"""Run the bastion: build the shared services from a config, listen, drain on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from .config import Config
from .record import AuditLog
from .ssh.certs import TrustedCA, issue_host_cert, load_private_key
from .ssh.server import Services, start_listener
from .ssh.upstream import UpstreamPool
from .store import StateStore

__all__ = ["build_services", "run_until_stopped", "serve"]

log = logging.getLogger("bastion")


def build_services(config: Config) -> Services:
    """Load keys and open stores; raises ConfigError on anything unusable."""
    import asyncssh

    from .errors import ConfigError

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
    return Services(
        config=config,
        pool=UpstreamPool(
            connect_timeout=config.server.connect_timeout,
            idle_seconds=config.server.upstream_idle_seconds,
            channels_per_connection=config.server.upstream_channels_per_connection,
        ),
        audit=AuditLog(paths.audit_log),
        store=StateStore(paths.database),
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
        services.audit.write("stop")
        services.audit.close()
        services.store.close()


def serve(config: Config, host: str, port: int) -> None:
    services = build_services(config)
    asyncio.run(run_until_stopped(services, host, port))
