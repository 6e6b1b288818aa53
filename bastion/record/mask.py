"""Secret masking: built-in patterns and ``[[masks]]`` rules, on bytes, also as a stream.

Masks are regular expressions over bytes (so binary output never needs decoding; ``\\w``
and case-folding are ASCII only). Built-ins, on by default (``[masking] builtins``):

- ``private-key``: the body of a PEM ``-----BEGIN ... PRIVATE KEY-----`` block, also
  when written on one line with literal ``\\n`` (JSON key files);
- ``cloud-key``: AWS access key ids (``AKIA...``, ``ASIA...``), Google API keys
  (``AIza...``), GitHub, GitLab and Slack tokens;
- ``jwt``: JSON web tokens; ``bearer``: ``Bearer``/``Basic``/``token`` credentials;
- ``secret-assignment``: the value of a key naming a secret (``PASSWORD``, ``PASSWD``,
  ``SECRET``, ``TOKEN``, ``API_KEY``, ``ACCESS_KEY``, ``PRIVATE_KEY``, ``ACCOUNT_KEY``
  and keys containing them, any case) after ``=`` or ``:``, quoted or not:
  ``DB_PASSWORD=hunter2`` becomes ``DB_PASSWORD=****``;
- ``url-credentials``: the password in ``scheme://user:password@host``;
- ``card-number``: 13-19 digit card numbers (a brand's prefix: Visa, Mastercard, Amex,
  Discover) that pass the Luhn check, standing alone (not inside a longer word or id).

Speed: a window is searched only for the patterns whose literal anchors it contains
(lower-cased), and windows of binary bytes with no run of ``MIN_SECRET_RUN`` text bytes
are skipped after one ``bytes.translate`` (so a secret inside binary data is found only
in a text run at least that long). ``StreamMasker`` masks a stream
cut into arbitrary reads: a partial line that could still become a secret (it holds an
anchor, a run of digits, or ends inside a word) is held back until its line ends, up to
``HOLD_BYTES``; an open private-key block is held until its end line (up to
``KEY_BLOCK_BYTES``, after which the rest of the block is swallowed).

Limits: masking recognises secrets by shape, so a secret that is transformed (base64,
reversed, split by the program itself) is not recognised; it is an aid against
accidental disclosure, not a boundary against a program that wants to leak.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = [
    "BUILTIN_MASKS",
    "HOLD_BYTES",
    "KEY_BLOCK_BYTES",
    "MaskRule",
    "Masker",
    "StreamMasker",
    "is_compressed",
    "luhn_ok",
]

STARS = b"****"
#: Longest partial line held back while it may still become a secret.
HOLD_BYTES = 16 * 1024
#: How far back from the end of a partial line a secret's start (a key word) is looked
#: for: a secret value longer than this may go out in two pieces.
CONTINUE_WINDOW = 1024
#: Longest private-key block held back before its end line.
KEY_BLOCK_BYTES = 64 * 1024
#: Shortest run of text bytes searched for secrets: a window without one is skipped. Text
#: has such runs everywhere; random bytes (compressed, encrypted) almost never do.
MIN_SECRET_RUN = 16

_PRINTABLE = bytes((1 if 32 <= i < 127 or i in (9, 10, 13) else 0) for i in range(256))


@dataclass(frozen=True)
class MaskRule:
    """One pattern: what to find, what to put instead, which windows to search."""

    name: str
    pattern: re.Pattern[bytes]
    #: the replacement: fixed bytes for the whole match, or a function of the match
    replace: bytes | Callable[[re.Match[bytes]], bytes] = STARS
    #: lower-case literals one of which a window must contain (empty: always search)
    anchors: tuple[bytes, ...] = ()
    #: the group whose text is replaced (0: the whole match)
    group: int = 0


def luhn_ok(digits: bytes) -> bool:
    """Whether a digit string passes the Luhn check (card numbers do)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ch - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[bytes]) -> bytes:
    digits = bytes(c for c in match.group(0) if 48 <= c <= 57)
    if 13 <= len(digits) <= 19 and luhn_ok(digits):
        return STARS
    return match.group(0)


_SECRET_KEY = (
    rb"[A-Za-z0-9_.\-]*(?:password|passwd|secret|token|api_?key|access_?key|private_?key"
    rb"|account_?key|client_?secret)[A-Za-z0-9_.\-]*"
)

BUILTIN_MASKS: tuple[MaskRule, ...] = (
    MaskRule(
        "private-key",
        re.compile(
            rb"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----)(.*?)"
            rb"(-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----)",
            re.S,
        ),
        anchors=(b"-----begin",),
        group=2,
    ),
    MaskRule(
        "cloud-key",
        re.compile(
            rb"\b(?:(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}"
            rb"|AIza[0-9A-Za-z_\-]{35}"
            rb"|gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{50,255}"
            rb"|glpat-[A-Za-z0-9_\-]{20,}|xox[abposr]-[A-Za-z0-9\-]{10,})\b"
        ),
        anchors=(b"akia", b"asia", b"agpa", b"aida", b"aroa", b"anpa", b"anva", b"aipa")
        + (b"aiza", b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_", b"github_pat_")
        + (b"glpat-", b"xox"),
    ),
    MaskRule(
        "jwt",
        re.compile(rb"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
        anchors=(b"eyj",),
    ),
    MaskRule(
        "bearer",
        re.compile(rb"(?i)\b(?:bearer|basic|token)\s+([A-Za-z0-9._~+/\-]{16,}=*)"),
        anchors=(b"bearer", b"basic", b"token"),
        group=1,
    ),
    MaskRule(
        "secret-assignment",
        re.compile(
            rb"(?i)(?<![A-Za-z0-9_.\-])" + _SECRET_KEY + rb"[\"']?[ \t]*[:=][ \t]*"
            rb"(?:\"([^\"\r\n]+)\"|'([^'\r\n]+)'|([^\s\"',;&]+))"
        ),
        anchors=(b"pass", b"secret", b"token", b"key"),
        group=-1,  # whichever value group matched
    ),
    MaskRule(
        "url-credentials",
        re.compile(rb"\b[a-zA-Z][a-zA-Z0-9+.\-]{1,20}://[^\s:/@]{1,128}:([^\s@/]{1,256})@"),
        anchors=(b"://",),
        group=1,
    ),
    MaskRule(
        "card-number",
        # a card brand's prefix (Visa, Mastercard, Amex, Discover), a standalone token:
        # ids and timestamps inside other words (ansible-tmp-1796...-1184...) are not cards
        re.compile(
            rb"(?<![A-Za-z0-9_.\-])(?:4[0-9]|5[1-5]|2[2-7]|3[47]|6[05])(?:[ \-]?[0-9]){11,17}"
            rb"(?![0-9A-Za-z_\-])"
        ),
        replace=_card,
    ),
)

_BUILTIN_NAMES = tuple(rule.name for rule in BUILTIN_MASKS)

#: Magic numbers of compressed or encrypted containers: no text secret can be read in
#: their bytes, so their streams are not searched (see the README, "Masking").
_COMPRESSED_MAGIC = (
    b"\x1f\x8b",  # gzip
    b"BZh",  # bzip2
    b"\xfd7zXZ\x00",  # xz
    b"\x28\xb5\x2f\xfd",  # zstd
    b"7z\xbc\xaf\x27\x1c",  # 7-zip
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a",
    b"GIF89a",
    b"age-encryption.org/",
    b"\x85\x02",  # OpenPGP (old format, RSA/ElGamal encrypted session key)
)


def is_compressed(head: bytes) -> bool:
    """Whether a stream starting with ``head`` is a compressed or encrypted container."""
    return head.startswith(_COMPRESSED_MAGIC)


class Masker:
    """A set of mask rules applied to whole buffers."""

    def __init__(self, rules: Iterable[MaskRule] = BUILTIN_MASKS):
        self.rules = tuple(rules)
        self._always = tuple(r for r in self.rules if not r.anchors)
        self._anchored = tuple(r for r in self.rules if r.anchors)
        self._anchors = tuple(sorted({a for r in self._anchored for a in r.anchors}))

    @classmethod
    def builtin(cls, names: Iterable[str] | None = None) -> Masker:
        wanted = set(_BUILTIN_NAMES if names is None else names)
        return cls(r for r in BUILTIN_MASKS if r.name in wanted)

    def __bool__(self) -> bool:
        return bool(self.rules)

    @property
    def anchors(self) -> tuple[bytes, ...]:
        return self._anchors

    def mask(self, data: bytes, *, same_length: bool = False) -> bytes:
        """``data`` with every secret replaced; with ``same_length`` each masked byte
        becomes ``*`` (line ends kept), so offsets stay true (SFTP reads)."""
        if not data or not self.rules:
            return data
        if len(data) >= 64 and not _has_printable_run(data):
            return data
        low = data.lower()
        for rule in self._anchored:
            if any(a in low for a in rule.anchors):
                data = _apply(rule, data, same_length)
        for rule in self._always:
            data = _apply(rule, data, same_length)
        return data

    def mask_text(self, text: str) -> str:
        """The same for a string (audit fields, markers, command lines)."""
        if not text or not self.rules:
            return text
        raw = text.encode("utf-8", "surrogateescape")
        masked = self.mask(raw)
        return text if masked is raw else masked.decode("utf-8", "replace")

    def may_continue(self, tail: bytes) -> bool:
        """Whether a partial line could still grow into a secret (then it is held)."""
        if not tail or not _PRINTABLE[tail[-1]]:
            return False  # a secret is text: one still growing ends with a text byte
        low = tail[-CONTINUE_WINDOW:].lower()
        if any(a in low for a in self._anchors):
            return True
        if self._always and _CARD_START.search(tail[-40:]):
            return True  # may be the start of a card number
        last = tail[-1:]
        return last.isalnum() or last in b"_-=+/.:%@'\"\\"


#: A partial line ending in what may still become a card number (brand prefix, digits).
_CARD_START = re.compile(rb"(?<![A-Za-z0-9_.\-])[2-6][0-9]{0,3}(?:[ \-]?[0-9]){0,15}[ \-]?$")


def _has_printable_run(data: bytes) -> bool:
    # Every 8th byte first: a run of 16 text bytes holds two neighbouring samples, so
    # when no two neighbours are text (zeros, most binary) there is no such run.
    if b"\x01\x01" not in data[:: MIN_SECRET_RUN // 2].translate(_PRINTABLE):
        return False
    return b"\x01" * MIN_SECRET_RUN in data.translate(_PRINTABLE)


def _apply(rule: MaskRule, data: bytes, same_length: bool) -> bytes:
    def replace(match: re.Match[bytes]) -> bytes:
        group = rule.group
        if group == -1:
            group = next((i for i in range(1, (match.re.groups or 0) + 1) if match.group(i)), 0)
        whole = match.group(0)
        if callable(rule.replace):
            new = rule.replace(match)
            if new == whole:
                return whole
            return _stars(whole) if same_length else new
        if group == 0:
            return _stars(whole) if same_length else rule.replace
        start, end = match.span(group)
        base = match.start(0)
        inner = whole[start - base : end - base]
        if same_length:
            new_inner = _stars(inner)
        elif inner[:1] == b"\n" and inner[-1:] == b"\n":
            new_inner = b"\n" + rule.replace + b"\n"  # keep a key block's line structure
        else:
            new_inner = rule.replace
        return whole[: start - base] + new_inner + whole[end - base :]

    return rule.pattern.sub(replace, data)


def _stars(text: bytes) -> bytes:
    return re.sub(rb"[^\r\n]", b"*", text)


_KEY_BEGIN = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_KEY_END = re.compile(rb"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")


class StreamMasker:
    """Masks one stream read in arbitrary pieces; ``feed`` returns what may go out now.

    Pieces with a NUL byte (binary, length-framed data such as a tar stream) are
    masked with the same length, so their framing survives.

    A stream whose first bytes are a compressed or encrypted container's magic
    (``is_compressed``) is not searched, except a piece that starts or ends with text
    (``SAMPLE`` bytes of it): so ``cat backup.tar.gz`` costs nothing, while text written
    after it (``cat a.gz app.env``) is still seen at the end of the output.
    """

    SAMPLE = 8

    def __init__(self, masker: Masker):
        self.masker = masker
        self._held = b""
        self._in_key = False  # swallowing an over-long private-key block
        self._started = False
        self._compressed = False

    @property
    def held(self) -> int:
        return len(self._held)

    def feed(self, data: bytes) -> bytes:
        if not self.masker:
            return data
        if not self._started and data:
            self._started = True
            self._compressed = is_compressed(data[:16])
        if self._compressed and not self._held and not self._in_key:
            if not (_is_text(data[: self.SAMPLE]) or _is_text(data[-self.SAMPLE :])):
                return data
        buf = self._held + data if self._held else data
        out: list[bytes] = []
        if self._in_key:
            buf = self._swallow_key(buf, out)
            if self._in_key:
                self._held = b""
                return b"".join(out)
        cut = self._safe_cut(buf)
        self._held = buf[cut:]
        if cut:
            out.append(self._mask(buf[:cut]))
        if len(self._held) > KEY_BLOCK_BYTES:
            out.append(self._force(self._held))
        return b"".join(out)

    def flush(self) -> bytes:
        """End of the stream: everything held goes out, masked."""
        held, self._held = self._held, b""
        if self._in_key:
            return b""
        return self._mask(held) if held else b""

    def _mask(self, data: bytes) -> bytes:
        # Binary data (a NUL byte) is framed by lengths (tar, SFTP, archives): keep
        # every length by masking byte for byte, so the stream stays readable.
        return self.masker.mask(data, same_length=b"\x00" in data)

    def _safe_cut(self, buf: bytes) -> int:
        """How much of ``buf`` can be masked and sent now."""
        cut = max(buf.rfind(b"\n"), buf.rfind(b"\r")) + 1
        if cut < len(buf):
            tail = buf[cut:]
            if not self.masker.may_continue(tail):
                cut = len(buf)
            elif len(tail) > HOLD_BYTES and not _word_at(buf, len(buf) - HOLD_BYTES // 2):
                cut = len(buf) - HOLD_BYTES // 2
        if b"-" in buf and b"-----BEGIN" in buf:
            # a private-key block goes out whole: hold from its first line to its end
            for match in _KEY_BEGIN.finditer(buf, 0, cut + 64):
                if match.start() >= cut:
                    break
                end = _KEY_END.search(buf, match.end())
                if end is None or end.end() > cut:
                    return _line_start(buf, match.start())
        return cut

    def _force(self, held: bytes) -> bytes:
        """A private-key block longer than we hold: mask what we have, swallow the rest."""
        self._held = b""
        match = _KEY_BEGIN.search(held)
        if match is None:
            return self._mask(held)
        self._in_key = True
        return self.masker.mask(held[: match.end()]) + b"\n" + STARS + b"\n"

    def _swallow_key(self, buf: bytes, out: list[bytes]) -> bytes:
        end = _KEY_END.search(buf)
        if end is None:
            return b""
        self._in_key = False
        return buf[end.start() :]


def _is_text(sample: bytes) -> bool:
    return b"\x00" not in sample.translate(_PRINTABLE)


def _line_start(buf: bytes, pos: int) -> int:
    nl = max(buf.rfind(b"\n", 0, pos), buf.rfind(b"\r", 0, pos))
    return nl + 1


def _word_at(buf: bytes, pos: int) -> bool:
    return buf[pos - 1 : pos].isalnum() or buf[pos : pos + 1].isalnum()
