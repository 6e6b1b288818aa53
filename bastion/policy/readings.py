"""The part of ``normalize.Normalizer`` its reading mixins (``tools``, ``launchers``,
``shell_builtins``) call back into: declared once here, provided by the normalizer."""

from __future__ import annotations

from .arith import ArithNames
from .shlexer import SimpleCommand
from .words import Word

__all__ = ["Readings"]


class Readings:
    """Base of the normalizer's mixins; every method is overridden by ``Normalizer``."""

    cwd: str | None
    trust: bool
    digits: set[str]
    arith_names: ArithNames

    def command(  # pragma: no cover - see normalize
        self,
        words: list[Word],
        sc: SimpleCommand,
        via: str,
        depth: int,
        tags: set[str],
        assigns: tuple[str, ...],
    ) -> None:
        raise NotImplementedError

    def run(self, cmds: list[SimpleCommand], via: str = "", depth: int = 0) -> None:
        raise NotImplementedError  # pragma: no cover - see normalize

    def shell_text(self, text: str, via: str, depth: int) -> bool:
        raise NotImplementedError  # pragma: no cover - see normalize

    def code_string(self, word: Word, via: str, depth: int, tags: set[str]) -> None:
        raise NotImplementedError  # pragma: no cover - see normalize

    @property
    def timeout(self) -> float:
        raise NotImplementedError  # pragma: no cover - see normalize
