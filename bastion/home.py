"""Create and change a bastion home: keys, policies.toml, sessions/, state database."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import tomlkit

from .config import HomePaths
from .errors import BastionError, ConfigError
from .ssh.certs import check_private_mode, generate_key, load_private_key, write_private_key
from .store import StateStore
from .tomlsource import TomlSource

__all__ = ["add_target", "default_policy_text", "init_home"]


def default_policy_text() -> str:
    """The shipped, commented policies.toml."""
    return resources.files("bastion").joinpath("data/policies.toml").read_text(encoding="utf-8")


def init_home(home: Path) -> list[str]:
    """Create what is missing; never overwrite a key or an edited policies.toml."""
    paths = HomePaths(home)
    created: list[str] = []
    home.mkdir(parents=True, exist_ok=True)
    if not paths.config.exists():
        paths.config.write_text(default_policy_text(), encoding="utf-8")
        created.append(str(paths.config))
    for key_path, comment in (
        (paths.user_ca, "bastion user CA"),
        (paths.host_ca, "bastion host CA"),
        (paths.host_key, "bastion host key"),
    ):
        if key_path.exists():
            check_private_mode(key_path)
        else:
            write_private_key(generate_key(), key_path, comment)
            created.append(str(key_path))
    paths.keys.chmod(0o700)
    from .config import load_config
    from .ssh.certs import issue_host_cert

    config = load_config(home, check_keys=False)
    cert = issue_host_cert(
        load_private_key(paths.host_ca),
        load_private_key(paths.host_key),
        list(config.server.hostnames),
    )
    cert.write_certificate(str(paths.host_cert))
    config.recording.dir.mkdir(parents=True, exist_ok=True)
    if not paths.database.exists():
        created.append(str(paths.database))
    StateStore(paths.database).close()
    return created


def add_target(
    home: Path,
    name: str,
    *,
    host: str,
    port: int,
    login: str,
    key_file: Path,
    allow_groups: list[str],
    host_key: str | None,
) -> Path:
    """Store the login's key (0600) and add or update the target in policies.toml."""
    paths = HomePaths(home)
    source = TomlSource.load(paths.config)
    try:
        key = load_private_key(key_file) if key_file.stat().st_mode & 0o077 == 0 else None
    except ConfigError:
        key = None
    if key is None:
        import asyncssh

        try:
            key = asyncssh.read_private_key(str(key_file))
        except (OSError, asyncssh.KeyImportError) as exc:
            raise BastionError(f"cannot read private key {key_file}: {exc}") from None
    stored = paths.target_keys / f"{name}-{login}"
    stored.parent.mkdir(parents=True, exist_ok=True)
    write_private_key(key, stored, f"bastion key for {login}@{name}")
    doc = tomlkit.parse(source.text)
    targets = doc.get("targets")
    if targets is None:
        targets = tomlkit.aot()
        doc.append("targets", targets)
    entry = next((t for t in targets if t.get("name") == name), None)
    if entry is None:
        entry = tomlkit.table()
        entry["name"] = name
        entry["host"] = host
        entry["port"] = port
        entry["host_keys"] = []
        entry["logins"] = tomlkit.array()
        targets.append(entry)
    else:
        entry["host"], entry["port"] = host, port
    if host_key:
        entry["host_keys"] = [host_key]
    elif not entry.get("host_keys"):
        raise BastionError(f"pin the host key of {name}: pass --host-key FILE or --scan")
    relative = stored.relative_to(home) if stored.is_relative_to(home) else stored
    logins = entry.setdefault("logins", tomlkit.array())
    for i, existing in enumerate(list(logins)):
        if existing.get("login") == login:
            del logins[i]
            break
    item = tomlkit.inline_table()
    item.update({"login": login, "key_file": str(relative), "allow_groups": list(allow_groups)})
    logins.append(item)
    logins.multiline(True)
    text = tomlkit.dumps(doc)
    tmp = paths.config.with_suffix(".toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    shutil.copymode(paths.config, tmp)
    tmp.replace(paths.config)
    return stored
