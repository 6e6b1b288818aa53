"""Secret masking: each built-in by example, streams cut anywhere, same-length mode."""

from __future__ import annotations

import json
import os
import random

import pytest

from bastion.record.audit import AuditLog
from bastion.record.mask import Masker, StreamMasker, is_compressed, luhn_ok
from bastion.record.masking import MaskingSection, MaskSection, masking_config

M = Masker.builtin()
PEM = (
    b"-----BEGIN OPENSSH PRIVATE KEY-----\n"
    b"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    b"QyNTUxOQAAACDk3Yq1dummydummydummy\n-----END OPENSSH PRIVATE KEY-----\n"
)

# (rule, text, secret that must be gone, text that must stay)
CASES = [
    ("secret-assignment", b"DB_PASSWORD=hunter2\n", b"hunter2", b"DB_PASSWORD=****"),
    ("secret-assignment", b"export api_key='s3cr3t v'\n", b"s3cr3t", b"export api_key='****'"),
    ("secret-assignment", b'{"client_secret": "abc def"}', b"abc def", b'"client_secret": "****"'),
    ("secret-assignment", b"github_token: ghx-123456\n", b"ghx-123456", b"github_token: ****"),
    ("secret-assignment", b"SecretAccessKey = wJalrXUtnFEMI/K7MDENG\n", b"wJalrX", b"= ****"),
    ("cloud-key", b"id AKIAIOSFODNN7EXAMPLE ok", b"AKIAIOSFODNN7EXAMPLE", b"id **** ok"),
    ("cloud-key", b"k=AIzaSyA1234567890abcdefghijklmnopqrstuv", b"AIzaSyA12345", b""),
    ("cloud-key", b"t ghp_" + b"a" * 36 + b" x", b"ghp_aaaa", b"t **** x"),
    (
        "jwt",
        b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpM",
        b"SflKxwRJSMeKKF2QT4fwpM",
        b"****",
    ),
    ("bearer", b"Authorization: Bearer abcdefghijklmnop0123", b"ijklmnop0123", b"Bearer ****"),
    ("url-credentials", b"postgres://bob:pa55word@db:5432/x", b"pa55word", b"bob:****@db"),
    ("card-number", b"card 4111 1111 1111 1111.", b"4111 1111 1111 1111", b"card ****."),
    ("card-number", b"pan=5500005555555559;", b"5500005555555559", b"pan=****;"),
    ("private-key", PEM, b"b3BlbnNzaC1rZXktdjEA", b"-----END OPENSSH PRIVATE KEY-----"),
]

KEPT = [
    b"uptime: 10 days, load 0.1\n",
    b"4111 1111 1111 1112\n",  # fails the Luhn check
    # ids inside words are no cards, even when they pass the Luhn check (Ansible reads this)
    b"ansible-tmp-1796661385.1485612-16870-118469406584687=/root/.ansible/tmp/x\n",
    b"build 4532015112830366-rc1\n",
    b"password for alice:",  # a prompt, no value
    b"see https://example.com/path?q=1\n",
    b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n",
]


@pytest.mark.parametrize("rule,text,secret,kept", CASES)
def test_builtin_masks(rule, text, secret, kept):
    out = Masker.builtin([rule]).mask(text)
    assert secret not in out, (rule, out)
    assert kept in out, (rule, out)
    same = Masker.builtin([rule]).mask(text, same_length=True)
    assert len(same) == len(text) and secret not in same
    assert same.count(b"\n") == text.count(b"\n")


@pytest.mark.parametrize("text", KEPT)
def test_ordinary_text_is_unchanged(text):
    assert M.mask(text) == text


def test_luhn():
    assert luhn_ok(b"4111111111111111") and not luhn_ok(b"4111111111111112")


def test_random_binary_is_unchanged_and_compressed_magic_known():
    data = os.urandom(1 << 20)
    assert M.mask(data) == data
    assert is_compressed(b"\x1f\x8b\x08\x00") and not is_compressed(b"\x7fELF")


@pytest.mark.parametrize("seed", range(20))
def test_stream_masks_secrets_split_anywhere(seed):
    rng = random.Random(seed)
    body = b"\n".join(text for _, text, _, _ in CASES) + b"\n".join(KEPT) + b"tail "
    stream = StreamMasker(M)
    out = b""
    i = 0
    while i < len(body):
        step = rng.randint(1, 40)
        out += stream.feed(body[i : i + step])
        i += step
    out += stream.flush()
    assert out == M.mask(body)
    for _, _, secret, _ in CASES:
        assert secret not in out


def test_stream_passes_ordinary_partial_lines_at_once():
    stream = StreamMasker(M)
    assert stream.feed(b"progress 45% ") == b"progress 45% "
    assert stream.feed(b"Continue? [y/N] ") == b"Continue? [y/N] "
    assert stream.feed(b"DB_PASS") == b""  # may become a secret: held
    assert stream.feed(b"WORD=x\n") == b"DB_PASSWORD=****\n"


def test_long_key_block_is_swallowed_not_leaked():
    stream = StreamMasker(M)
    out = stream.feed(b"-----BEGIN RSA PRIVATE KEY-----\n")
    for _ in range(2000):
        out += stream.feed(b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\n")
    out += stream.feed(b"-----END RSA PRIVATE KEY-----\nafter\n") + stream.flush()
    assert b"QUJD" not in out and out.endswith(b"-----END RSA PRIVATE KEY-----\nafter\n")


def test_custom_masks_are_scoped():
    config = masking_config(
        MaskingSection(),
        [MaskSection(id="emp", regex="EMP-[0-9]{6}", replacement="EMP-?", groups=["hr"])],
    )
    assert config.for_session("a", ["hr"], "web1", "root").mask(b"EMP-123456") == b"EMP-?"
    assert config.for_session("a", ["ops"], "web1", "root").mask(b"EMP-123456") == b"EMP-123456"
    assert config.for_audit().mask(b"EMP-123456") == b"EMP-?"


def test_mask_regex_that_matches_nothing_is_refused():
    with pytest.raises(ValueError, match="empty string"):
        MaskSection(id="x", regex="a*")


def test_audit_log_strings_are_masked(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl", redact=M.mask_text)
    log.write("decision", command="mysql -u root --password=hunter2", commands=["x TOKEN=abc"])
    record = json.loads((tmp_path / "audit.jsonl").read_text())
    assert "hunter2" not in json.dumps(record) and "abc" not in record["commands"][0]


def test_compressed_stream_is_relayed_as_is_but_text_after_it_is_masked():
    import gzip

    body = gzip.compress(os.urandom(200_000), 1)
    stream = StreamMasker(M)
    out = b"".join(stream.feed(body[i : i + 32768]) for i in range(0, len(body), 32768))
    assert out == body
    tail = stream.feed(b"\nDB_PASSWORD=hunter2\n") + stream.flush()
    assert tail == b"\nDB_PASSWORD=****\n"


def test_binary_framed_stream_keeps_its_length():
    """A tar member holding a secret: masked byte for byte, the archive stays valid."""
    import io
    import tarfile

    body = b"DB_PASSWORD=hunter2\n"
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("app.env")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    raw = out.getvalue()
    stream = StreamMasker(M)
    masked = b"".join(stream.feed(raw[i : i + 700]) for i in range(0, len(raw), 700))
    masked += stream.flush()
    assert len(masked) == len(raw) and b"hunter2" not in masked
    with tarfile.open(fileobj=io.BytesIO(masked)) as tar:
        member = tar.extractfile("app.env")
        assert member is not None and member.read() == b"DB_PASSWORD=*******\n"
