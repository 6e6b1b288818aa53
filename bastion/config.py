"""policies.toml -> typed, validated config. The only place that rejects bad config.

A bad config never starts a permissive bastion: every unknown key, wrong type, missing
file or loose key-file mode is a ConfigError naming file, line and key.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .policy import POLICY_SECTIONS, Policy, load_policy
from .tomlsource import KeyPath, TomlSource

__all__ = [
    "Config",
    "HomePaths",
    "RecordingConfig",
    "ServerConfig",
    "Target",
    "TargetLogin",
    "TrustedCAConfig",
    "default_home",
    "default_hostnames",
    "load_config",
    "load_policy_file",
    "parse_listen",
]

MIB = 1024 * 1024


def default_home() -> Path:
    return Path(os.environ.get("BASTION_HOME") or ".").resolve()


def default_hostnames() -> list[str]:
    names = ["localhost", "127.0.0.1", "::1"]
    host = socket.gethostname()
    if host and host not in names:
        names.append(host)
    return names


def parse_listen(text: str) -> tuple[str, int]:
    """'127.0.0.1:2222', '[::1]:2222' or ':2222' -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen address {text!r} must look like 127.0.0.1:2222")
    return host.strip("[]") or "0.0.0.0", int(port)


@dataclass(frozen=True)
class HomePaths:
    """Where everything lives inside a bastion home directory."""

    home: Path

    @property
    def config(self) -> Path:
        return self.home / "policies.toml"

    @property
    def keys(self) -> Path:
        return self.home / "keys"

    @property
    def user_ca(self) -> Path:
        return self.keys / "user_ca"

    @property
    def host_ca(self) -> Path:
        return self.keys / "host_ca"

    @property
    def host_key(self) -> Path:
        return self.keys / "host_ed25519"

    @property
    def host_cert(self) -> Path:
        return self.keys / "host_ed25519-cert.pub"

    @property
    def target_keys(self) -> Path:
        return self.keys / "targets"

    @property
    def database(self) -> Path:
        return self.home / "state.db"

    @property
    def audit_log(self) -> Path:
        return self.home / "audit.jsonl"


@dataclass(frozen=True)
class ServerConfig:
    listen_host: str = "127.0.0.1"
    listen_port: int = 2222
    hostnames: tuple[str, ...] = ()
    connect_timeout: float = 10.0
    login_timeout: float = 60.0
    upstream_idle_seconds: float = 60.0
    upstream_channels_per_connection: int = 8


@dataclass(frozen=True)
class RecordingConfig:
    dir: Path
    max_output_bytes: int = 64 * MIB
    record_input: bool = False


@dataclass(frozen=True)
class TargetLogin:
    login: str
    key_file: Path
    allow_groups: tuple[str, ...]

    def allows(self, groups: tuple[str, ...]) -> bool:
        return "*" in self.allow_groups or any(g in self.allow_groups for g in groups)


@dataclass(frozen=True)
class Target:
    name: str
    host: str
    port: int
    host_keys: tuple[str, ...]
    logins: dict[str, TargetLogin] = field(default_factory=dict)

    def logins_for(self, groups: tuple[str, ...]) -> list[str]:
        return [name for name, login in self.logins.items() if login.allows(groups)]


@dataclass(frozen=True)
class TrustedCAConfig:
    name: str
    public_key: str
    default_groups: tuple[str, ...] = ()


@dataclass
class Config:
    paths: HomePaths
    server: ServerConfig
    recording: RecordingConfig
    targets: dict[str, Target]
    trusted_cas: list[TrustedCAConfig]
    policy: Policy
    source: TomlSource

    @property
    def home(self) -> Path:
        return self.paths.home


class _Reader:
    """Typed access to one table, collecting the keys it has read to catch unknown ones."""

    def __init__(self, source: TomlSource, table: dict[str, Any], path: KeyPath):
        self.source, self.table, self.path = source, table, path
        self.seen: set[str] = set()

    def _get(self, key: str, types: type | tuple[type, ...], kind: str, default: Any) -> Any:
        self.seen.add(key)
        if key not in self.table:
            if default is _REQUIRED:
                raise self.source.error(self.path + (key,), f"missing required key ({kind})")
            return default
        value = self.table[key]
        if not isinstance(value, types) or isinstance(value, bool) and bool not in _as_tuple(types):
            raise self.source.error(self.path + (key,), f"must be {kind}, not {value!r}")
        return value

    def text(self, key: str, default: Any = None) -> Any:
        return self._get(key, str, "a string", default)

    def integer(self, key: str, default: Any = None, low: int = 0, high: int = 2**31) -> Any:
        value = self._get(key, int, "an integer", default)
        if isinstance(value, int) and not low <= value <= high:
            raise self.source.error(self.path + (key,), f"must be between {low} and {high}")
        return value

    def number(self, key: str, default: Any = None) -> Any:
        value = self._get(key, (int, float), "a number", default)
        if isinstance(value, (int, float)) and value <= 0:
            raise self.source.error(self.path + (key,), "must be positive")
        return value

    def flag(self, key: str, default: Any = None) -> Any:
        return self._get(key, bool, "true or false", default)

    def strings(self, key: str, default: Any = ()) -> tuple[str, ...]:
        value = self._get(key, list, "a list of strings", default)
        if not all(isinstance(v, str) for v in value):
            raise self.source.error(self.path + (key,), "must be a list of strings")
        return tuple(value)

    def tables(self, key: str) -> list[dict[str, Any]]:
        value = self._get(key, list, "a list of tables", [])
        if not all(isinstance(v, dict) for v in value):
            raise self.source.error(self.path + (key,), "must be a list of tables")
        return value

    def done(self) -> None:
        for key in self.table:
            if key not in self.seen:
                raise self.source.error(self.path + (key,), "unknown key")


_REQUIRED = object()


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _key_path(home: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else home / path


def _server(source: TomlSource) -> ServerConfig:
    table = source.data.get("server", {})
    r = _Reader(source, table, ("server",))
    listen = r.text("listen", "127.0.0.1:2222")
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise source.error(("server", "listen"), str(exc)) from None
    hostnames = r.strings("hostnames", ()) or tuple(default_hostnames())
    server = ServerConfig(
        listen_host=host,
        listen_port=port,
        hostnames=hostnames,
        connect_timeout=float(r.number("connect_timeout", 10)),
        login_timeout=float(r.number("login_timeout", 60)),
        upstream_idle_seconds=float(r.number("upstream_idle_seconds", 60)),
        upstream_channels_per_connection=r.integer("upstream_channels_per_connection", 8, 1, 64),
    )
    r.done()
    return server


def _recording(source: TomlSource, home: Path) -> RecordingConfig:
    r = _Reader(source, source.data.get("recording", {}), ("recording",))
    rec = RecordingConfig(
        dir=_key_path(home, r.text("dir", "sessions")),
        max_output_bytes=r.integer("max_output_mb", 64, 1, 1 << 20) * MIB,
        record_input=r.flag("record_input", False),
    )
    r.done()
    return rec


def _targets(source: TomlSource, home: Path, check_keys: bool) -> dict[str, Target]:
    from .ssh.certs import check_private_mode  # keys are an SSH concern

    targets: dict[str, Target] = {}
    for i, table in enumerate(_Reader(source, source.data, ()).tables("targets")):
        r = _Reader(source, table, ("targets", i))
        name = r.text("name", _REQUIRED)
        if name in targets:
            raise source.error(("targets", i, "name"), f"target {name!r} is defined twice")
        host = r.text("host", _REQUIRED)
        port = r.integer("port", 22, 1, 65535)
        host_keys = r.strings("host_keys", ())
        if not host_keys:
            raise source.error(
                ("targets", i, "host_keys"),
                "pin at least one host key (bastion target add --scan fetches it)",
            )
        logins: dict[str, TargetLogin] = {}
        for entry in r.tables("logins"):
            lr = _Reader(source, entry, ("targets", i, "logins"))
            login = lr.text("login", _REQUIRED)
            key_file = _key_path(home, lr.text("key_file", _REQUIRED))
            groups = lr.strings("allow_groups", ())
            lr.done()
            if check_keys:
                try:
                    check_private_mode(key_file)
                except ConfigError as exc:
                    raise source.error(
                        ("targets", i, "logins"), f"{key_file}: {exc.detail}"
                    ) from None
            logins[login] = TargetLogin(login, key_file, groups)
        r.done()
        targets[name] = Target(name, host, port, host_keys, logins)
    return targets


def _trusted_cas(source: TomlSource) -> list[TrustedCAConfig]:
    cas = []
    for i, table in enumerate(_Reader(source, source.data, ()).tables("trusted_ca")):
        r = _Reader(source, table, ("trusted_ca", i))
        cas.append(
            TrustedCAConfig(
                name=r.text("name", _REQUIRED),
                public_key=r.text("public_key", _REQUIRED),
                default_groups=r.strings("default_groups", ()),
            )
        )
        r.done()
    return cas


_OWN_SECTIONS = ("server", "recording", "targets", "trusted_ca")


def load_policy_file(home: Path | str | None = None) -> Policy:
    """Only the command policy of a home, for `bastion policy ...` tools."""
    home = Path(home).resolve() if home else default_home()
    return load_policy(TomlSource.load(HomePaths(home).config))


def load_config(home: Path | str | None = None, *, check_keys: bool = True) -> Config:
    """Load and validate <home>/policies.toml; with check_keys, also the key files."""
    paths = HomePaths(Path(home).resolve() if home else default_home())
    if not paths.config.exists():
        raise ConfigError(
            f"file not found: is {paths.home} a bastion home? "
            f"Create one with `bastion init --home {paths.home}`",
            path=str(paths.config),
        )
    source = TomlSource.load(paths.config)
    for key in source.data:
        if key not in _OWN_SECTIONS and key not in POLICY_SECTIONS:
            raise source.error((key,), "unknown section")
    if check_keys:
        from .ssh.certs import check_private_mode

        for key_file in (paths.user_ca, paths.host_ca, paths.host_key):
            if not key_file.exists():
                raise ConfigError(
                    f"missing key file {key_file}: run `bastion init --home {paths.home}`",
                    path=str(paths.config),
                )
            check_private_mode(key_file)
    return Config(
        paths=paths,
        server=_server(source),
        recording=_recording(source, paths.home),
        targets=_targets(source, paths.home, check_keys),
        trusted_cas=_trusted_cas(source),
        policy=load_policy(source),
        source=source,
    )
