"""policies.toml -> typed, validated config. The only place that rejects bad config.

A bad config never starts a permissive bastion: every unknown key or section, wrong type,
duplicate, missing file or loose file mode is a ConfigError naming file, line and key.
Each package owns its sections' schema (``bastion.schema`` models): this module the
server, recording, limits, approvals, targets and trusted CAs; ``bastion.policy`` the
command policy. Safety of the home is checked here too: the home, ``policies.toml``
and ``keys/`` must not be writable by others, nor owned by another user.
"""

from __future__ import annotations

import os
import socket
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from .errors import ConfigError
from .forwards import ForwardRule, ForwardSection, forward_rules
from .identity.settings import IdentitySection, IdentitySettings, ProviderSection, load_identity
from .policy import POLICY_SECTIONS, Policy, load_policy
from .record.masking import MaskingConfig, MaskingSection, MaskSection, masking_config
from .schema import Section, check
from .tomlsource import TomlSource

__all__ = [
    "ApprovalsConfig",
    "Config",
    "HomePaths",
    "LimitsConfig",
    "RecordingConfig",
    "ServerConfig",
    "ShellConfig",
    "Target",
    "TargetLogin",
    "TrustedCAConfig",
    "check_home_safety",
    "default_home",
    "default_hostnames",
    "load_config",
    "load_policy_file",
    "parse_duration",
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


def parse_duration(text: str) -> int:
    """'8h', '30m', '90s', '2d', '1w' or plain seconds -> seconds (positive)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = text.strip().lower()
    try:
        if text and text[-1] in units:
            seconds = int(text[:-1]) * units[text[-1]]
        else:
            seconds = int(text)
    except ValueError:
        raise ValueError(f"bad duration {text!r}: use e.g. 8h, 30m, 3600") from None
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {text!r}")
    return seconds


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

    @property
    def history(self) -> Path:
        return self.home / "history"


# ---- schema: the sections this module owns ------------------------------------------

PositiveFloat = Annotated[float | int, Field(gt=0)]


class ServerSection(Section):
    listen: str = "127.0.0.1:2222"
    hostnames: list[str] = []
    connect_timeout: PositiveFloat = 10
    login_timeout: PositiveFloat = 60
    upstream_idle_seconds: PositiveFloat = 60
    upstream_channels_per_connection: Annotated[int, Field(ge=1, le=64)] = 8
    name: str = ""

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value


class RecordingSection(Section):
    dir: str = "sessions"
    max_output_mb: Annotated[int, Field(ge=1, le=1 << 20)] = 64
    record_input: bool = False
    max_binary_mb: Annotated[int, Field(ge=1, le=1 << 24)] = 1024


class LimitsSection(Section):
    channels_per_connection: Annotated[int, Field(ge=1, le=1024)] = 32
    env_per_channel: Annotated[int, Field(ge=0, le=1024)] = 32
    env_bytes_per_channel: Annotated[int, Field(ge=0, le=1 << 20)] = 16384
    sessions_per_identity: Annotated[int, Field(ge=1, le=100_000)] = 64
    jumps_per_identity: Annotated[int, Field(ge=1, le=100_000)] = 32
    upstream_channels_per_identity: Annotated[int, Field(ge=1, le=10_000)] = 16


class ApprovalsSection(Section):
    approver_group: Annotated[str, Field(min_length=1)] = "approvers"
    ttl: str = "10m"
    notify_url: str = ""

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("notify_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


_LOGIN_NAME = r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$"
_TARGET_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class LoginSection(Section):
    login: Annotated[str, Field(pattern=_LOGIN_NAME)]
    key_file: Annotated[str, Field(min_length=1)]
    allow_groups: list[Annotated[str, Field(min_length=1)]] = []
    shell: str = ""
    shell_opt_in: bool = False


class TargetSection(Section):
    name: Annotated[str, Field(pattern=_TARGET_NAME)]
    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    host_keys: Annotated[list[str], Field(validate_default=True)] = []
    logins: list[LoginSection] = []

    @field_validator("host_keys")
    @classmethod
    def _pinned(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("pin at least one host key (bastion target add --scan fetches it)")
        return value

    @model_validator(mode="after")
    def _unique_logins(self) -> TargetSection:
        seen: set[str] = set()
        for entry in self.logins:
            if entry.login in seen:
                raise ValueError(
                    f"login {entry.login!r} is listed twice on target {self.name!r}: merge "
                    "the entries (a later entry would silently widen the first)"
                )
            seen.add(entry.login)
        return self


class TrustedCASection(Section):
    name: Annotated[str, Field(min_length=1)]
    public_key: Annotated[str, Field(min_length=1)]
    default_groups: list[str] = []


class ShellSection(Section):
    """[shell]: the bastion's interactive shell (bastion.flows.shell)."""

    idle_timeout: str = "1h"  # at the prompt without a key; "0" never
    history_size: Annotated[int, Field(ge=0, le=100_000)] = 1000
    record_input: bool | None = None  # None: as [recording] record_input

    @field_validator("idle_timeout")
    @classmethod
    def _idle(cls, value: str) -> str:
        if value.strip() != "0":
            parse_duration(value)
        return value


class OwnSections(Section):
    """The top level as far as this module is concerned (policy sections pass through)."""

    model_config = Section.model_config | {"extra": "allow"}
    server: ServerSection = ServerSection()
    recording: RecordingSection = RecordingSection()
    limits: LimitsSection = LimitsSection()
    approvals: ApprovalsSection = ApprovalsSection()
    shell: ShellSection = ShellSection()
    targets: list[TargetSection] = []
    trusted_ca: list[TrustedCASection] = []
    # the data path: masking (bastion.record.masking) and forwards (bastion.forwards)
    masking: MaskingSection = MaskingSection()
    masks: list[MaskSection] = []
    forwards: list[ForwardSection] = []
    # ---- identity (bastion.identity.settings owns these) ----
    identity: IdentitySection = IdentitySection()
    identity_providers: list[ProviderSection] = []


# ---- the typed config the rest of the bastion uses -----------------------------------


@dataclass(frozen=True)
class ServerConfig:
    listen_host: str = "127.0.0.1"
    listen_port: int = 2222
    hostnames: tuple[str, ...] = ()
    connect_timeout: float = 10.0
    login_timeout: float = 60.0
    upstream_idle_seconds: float = 60.0
    upstream_channels_per_connection: int = 8
    name: str = "bastion"  # this bastion among several sharing a store


@dataclass(frozen=True)
class RecordingConfig:
    dir: Path
    max_output_bytes: int = 64 * MIB
    record_input: bool = False
    max_binary_bytes: int = 1024 * MIB


@dataclass(frozen=True)
class LimitsConfig:
    channels_per_connection: int = 32
    env_per_channel: int = 32
    env_bytes_per_channel: int = 16384
    sessions_per_identity: int = 64
    jumps_per_identity: int = 32
    upstream_channels_per_identity: int = 16


@dataclass(frozen=True)
class ApprovalsConfig:
    approver_group: str = "approvers"
    ttl: int = 600
    notify_url: str = ""


@dataclass(frozen=True)
class ShellConfig:
    idle_timeout: int = 3600  # seconds; 0: never
    history_size: int = 1000
    record_input: bool = False


@dataclass(frozen=True)
class TargetLogin:
    login: str
    key_file: Path
    allow_groups: tuple[str, ...]
    shell: str = ""
    shell_opt_in: bool = False

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
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    approvals: ApprovalsConfig = field(default_factory=ApprovalsConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    forwards: tuple[ForwardRule, ...] = ()
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    shell: ShellConfig = field(default_factory=ShellConfig)

    @property
    def home(self) -> Path:
        return self.paths.home


def _key_path(home: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else home / path


#: Top-level sections owned by this module.
OWN_SECTIONS = (
    "server",
    "recording",
    "limits",
    "approvals",
    "shell",
    "targets",
    "trusted_ca",
    "masking",
    "masks",
    "forwards",
    "identity",
    "identity_providers",
)


def _typed(sections: OwnSections, paths: HomePaths, source: TomlSource) -> dict[str, object]:
    s = sections.server
    host, port = parse_listen(s.listen)
    server = ServerConfig(
        listen_host=host,
        listen_port=port,
        hostnames=tuple(s.hostnames) or tuple(default_hostnames()),
        connect_timeout=float(s.connect_timeout),
        login_timeout=float(s.login_timeout),
        upstream_idle_seconds=float(s.upstream_idle_seconds),
        upstream_channels_per_connection=s.upstream_channels_per_connection,
        name=s.name or socket.gethostname() or "bastion",
    )
    r = sections.recording
    recording = RecordingConfig(
        dir=_key_path(paths.home, r.dir),
        max_output_bytes=r.max_output_mb * MIB,
        record_input=r.record_input,
        max_binary_bytes=r.max_binary_mb * MIB,
    )
    limits = LimitsConfig(**sections.limits.model_dump())
    a = sections.approvals
    approvals = ApprovalsConfig(a.approver_group, parse_duration(a.ttl), a.notify_url)
    sh = sections.shell
    shell = ShellConfig(
        idle_timeout=0 if sh.idle_timeout.strip() == "0" else parse_duration(sh.idle_timeout),
        history_size=sh.history_size,
        record_input=r.record_input if sh.record_input is None else sh.record_input,
    )
    targets: dict[str, Target] = {}
    for i, t in enumerate(sections.targets):
        if t.name in targets:
            raise source.error(("targets", i, "name"), f"target {t.name!r} is defined twice")
        logins = {
            entry.login: TargetLogin(
                entry.login,
                _key_path(paths.home, entry.key_file),
                tuple(entry.allow_groups),
                entry.shell,
                entry.shell_opt_in,
            )
            for entry in t.logins
        }
        targets[t.name] = Target(t.name, t.host, t.port, tuple(t.host_keys), logins)
    names: set[str] = set()
    cas = []
    for i, ca in enumerate(sections.trusted_ca):
        if ca.name in names:
            raise source.error(("trusted_ca", i, "name"), f"CA {ca.name!r} is listed twice")
        names.add(ca.name)
        cas.append(TrustedCAConfig(ca.name, ca.public_key, tuple(ca.default_groups)))
    _unique_ids(source, "masks", [m.id for m in sections.masks])
    _unique_ids(source, "forwards", [f.id for f in sections.forwards])
    return {
        "masking": masking_config(sections.masking, sections.masks),
        "forwards": forward_rules(sections.forwards),
        "server": server,
        "recording": recording,
        "limits": limits,
        "approvals": approvals,
        "shell": shell,
        "targets": targets,
        "trusted_cas": cas,
    }


def _unique_ids(source: TomlSource, section: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i, ident in enumerate(ids):
        if ident in seen:
            raise source.error((section, i, "id"), f"id {ident!r} is used twice")
        seen.add(ident)


def _loose(mode: int, mask: int) -> bool:
    return bool(mode & mask)


def check_home_safety(paths: HomePaths) -> None:
    """Refuse a home others could change: writable by group/others, or another's."""
    me = os.geteuid()
    checks: list[tuple[Path, int, str]] = [
        (paths.home, stat.S_IWOTH | stat.S_IWGRP, "the bastion home"),
        (paths.config, stat.S_IWOTH | stat.S_IWGRP, "policies.toml"),
        (paths.keys, stat.S_IRWXO | stat.S_IWGRP, "the keys directory"),
    ]
    for path, mask, what in checks:
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if st.st_uid not in (me, 0):
            raise ConfigError(
                f"{what} is owned by another user (uid {st.st_uid}); the bastion runs as "
                f"uid {me}: chown it to the bastion's user",
                path=str(path),
            )
        if _loose(st.st_mode, mask):
            mode = stat.S_IMODE(st.st_mode)
            tight = "700" if path.is_dir() else "600"
            raise ConfigError(
                f"{what} may be changed by other users (mode {mode:04o}); run: "
                f"chmod {tight} {path}",
                path=str(path),
            )


def load_policy_file(home: Path | str | None = None) -> Policy:
    """Only the command policy of a home, for `bastion policy ...` tools."""
    home = Path(home).resolve() if home else default_home()
    return load_policy(TomlSource.load(HomePaths(home).config))


def load_config(home: Path | str | None = None, *, check_keys: bool = True) -> Config:
    """Load and validate <home>/policies.toml; with check_keys, also the files' safety."""
    paths = HomePaths(Path(home).resolve() if home else default_home())
    if not paths.config.exists():
        raise ConfigError(
            f"file not found: is {paths.home} a bastion home? "
            f"Create one with `bastion init --home {paths.home}`",
            path=str(paths.config),
        )
    source = TomlSource.load(paths.config)
    for key in source.data:
        if key not in OWN_SECTIONS and key not in POLICY_SECTIONS:
            raise source.error((key,), "unknown section")
    own = check(source, OwnSections, {k: v for k, v in source.data.items() if k in OWN_SECTIONS})
    typed = _typed(own, paths, source)
    if check_keys:
        _check_key_files(paths, source, typed["targets"])  # type: ignore[arg-type]
    return Config(
        paths=paths,
        policy=load_policy(source),
        source=source,
        identity=load_identity(source),
        **typed,  # type: ignore[arg-type]
    )


def check_private_mode(path: Path) -> None:
    """Refuse key files that group or others could read (invariant 5)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError("key file not found", path=str(path)) from None
    if mode & 0o077:
        raise ConfigError(
            f"key file is readable by others (mode {mode & 0o777:04o}); run: chmod 600 {path}",
            path=str(path),
        )


def _check_key_files(paths: HomePaths, source: TomlSource, targets: dict[str, Target]) -> None:
    check_home_safety(paths)
    for key_file in (paths.user_ca, paths.host_ca, paths.host_key):
        if not key_file.exists():
            raise ConfigError(
                f"missing key file {key_file}: run `bastion init --home {paths.home}`",
                path=str(paths.config),
            )
        check_private_mode(key_file)
    for i, target in enumerate(targets.values()):
        for login in target.logins.values():
            try:
                check_private_mode(login.key_file)
            except ConfigError as exc:
                raise source.error(
                    ("targets", i, "logins"), f"{login.key_file}: {exc.detail}"
                ) from None


__all__ += ["OWN_SECTIONS", "check_private_mode"]
