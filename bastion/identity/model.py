"""The identity a verified certificate proves. Plain data, no SSH library."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Identity"]


@dataclass(frozen=True)
class Identity:
    """A person or agent, as its certificate says: name, groups, and which cert."""

    user: str
    groups: tuple[str, ...]
    key_id: str
    serial: int
    ca: str
    fingerprint: str
    valid_before: int
    principals: tuple[str, ...] = ()  # every name the certificate is valid for
    permits: frozenset[str] = frozenset({"pty", "port-forwarding"})  # permit-* extensions
    valid_after: int = 0  # when the certificate became valid (revocation compares it)

    def describe(self) -> str:
        groups = ",".join(self.groups) or "-"
        cert = f"cert {self.key_id!r} serial {self.serial} from {self.ca}"
        return f"{self.user} (groups {groups}, {cert})"

    def is_same_person(self, user: str, fingerprint: str = "") -> bool:
        """Whether ``user`` (or the key ``fingerprint``) is this identity under any name:
        nobody approves their own request, whichever principal they use."""
        return (
            user == self.user
            or user in self.principals
            or (bool(fingerprint) and fingerprint == self.fingerprint)
        )
