"""Who is on the other end: the identity a certificate proves, and what it may reach."""

from __future__ import annotations

from .model import Identity

__all__ = ["Identity"]
