"""Create and change a bastion home: keys, policies.toml, sessions/, state database."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import tomlkit

from .config import Config, HomePaths
from .errors import BastionError, ConfigError
from .ssh.certs import check_private_mode, generate_key, load_private_key, write_private_key
from .storage import SQLiteStore
from .tomlsource import TomlSource

__all__ = ["add_target", "cert_authority_line", "default_policy_text", "init_home"]


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
    config.recording.dir.chmod(0o750)
    home.chmod(home.stat().st_mode & ~0o022)
    if not paths.database.exists():
        created.append(str(paths.database))
    SQLiteStore(paths.database).close_now()
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
    shell: str = "",
    shell_opt_in: bool = False,
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
    if shell:
        item["shell"] = shell  # as seen at `target add`; checked again at every connect
    if shell_opt_in:
        item["shell_opt_in"] = True
    logins.append(item)
    logins.multiline(True)
    _write_config(paths, doc)
    return stored


def set_login_shell(home: Path, name: str, login: str, shell: str) -> None:
    """Record the shell read from the target for one of its logins."""
    paths = HomePaths(home)
    doc = tomlkit.parse(TomlSource.load(paths.config).text)
    for entry in doc.get("targets", []):
        if entry.get("name") == name:
            for item in entry.get("logins", []):
                if item.get("login") == login:
                    item["shell"] = shell
    _write_config(paths, doc)


def _write_config(paths: HomePaths, doc: tomlkit.TOMLDocument) -> None:
    """Replace policies.toml atomically, keeping its mode."""
    tmp = paths.config.with_suffix(".toml.tmp")
    tmp.write_text(tomlkit.dumps(doc), encoding="utf-8")
    shutil.copymode(paths.config, tmp)
    tmp.replace(paths.config)


def cert_authority_line(
    config: Config, *, port: int | None = None, pattern: str | None = None
) -> str:
    """The known_hosts line trusting the bastion's host CA for its own names and its
    targets' names only (never ``*``: the CA would then vouch for any host)."""
    pub = Path(f"{config.paths.host_ca}.pub")
    if not pub.exists():
        raise BastionError(f"{pub} not found: run `bastion init` first")
    if pattern is None:
        listen = port or config.server.listen_port
        names: list[str] = []
        for name in config.server.hostnames:
            names.append(name)
            if listen != 22:
                names.append(f"[{name}]:{listen}")
        for target in config.targets.values():
            names.append(target.name)
            if target.port != 22:  # `ssh -J bastion -p PORT name` checks "[name]:PORT"
                names.append(f"[{target.name}]:{target.port}")
        pattern = ",".join(dict.fromkeys(names))
    return f"@cert-authority {pattern} {pub.read_text().strip()}"
