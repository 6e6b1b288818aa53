"""Masking and binary recording on the real data path (ssh -J through the bastion).

The secrets are written to files on the target (this machine) by the test, so the
command lines themselves hold none; each check names the bytes that must be gone and
the bytes that must be left exactly as they were.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

from .conftest import LOGIN

SECRETS = (
    b"user=app\n"
    b"DB_PASSWORD=hunter2-value\n"
    b"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
    b"card 4111 1111 1111 1111 end\n"
    b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkeybodykeybodykeybody\n"
    b"-----END EC PRIVATE KEY-----\n"
    b"plain line stays\n"
)
GONE = [b"hunter2-value", b"AKIAIOSFODNN7EXAMPLE", b"4111 1111 1111 1111", b"MHcCAQEEIBkeybody"]
EXPECTED = (
    b"user=app\n"
    b"DB_PASSWORD=****\n"
    b"aws_access_key_id = ****\n"
    b"card **** end\n"
    b"-----BEGIN EC PRIVATE KEY-----\n****\n-----END EC PRIVATE KEY-----\n"
    b"plain line stays\n"
)


def _ssh(world, command: str, *extra: str) -> subprocess.CompletedProcess:
    return world.alice.ssh(*extra, "-J", "bastion", f"{LOGIN}@web1", command)


def _cast_with(world, needle: str):
    for cast in reversed(world.bastion.casts()):
        text = cast.read_text(errors="replace")
        if needle in text:
            return cast, text
    raise AssertionError(f"no cast with {needle!r}")


def _all_records(world) -> bytes:
    data = (world.home / "audit.jsonl").read_bytes()
    for cast in world.bastion.casts():
        data += cast.read_bytes()
    return data


def test_secrets_split_across_reads_are_masked_live_and_in_records(world, tmp_path):
    secrets = tmp_path / "app.env"
    secrets.write_bytes(SECRETS)
    # cut inside the password and inside the key block, with a pause between the pieces
    cut1, cut2 = SECRETS.index(b"hunter") + 3, SECRETS.index(b"keybody") + 2
    command = (
        f"head -c {cut1} {secrets}; sleep 0.3; tail -c +{cut1 + 1} {secrets} | head -c "
        f"{cut2 - cut1}; sleep 0.3; tail -c +{cut2 + 1} {secrets}; exit 3"
    )
    result = _ssh(world, command)
    assert result.returncode == 3, result.stderr
    assert result.stdout == EXPECTED
    _, cast = _cast_with(world, f"tail -c +{cut2 + 1}")
    records = _all_records(world)
    for secret in GONE:
        assert secret not in records, secret
    assert "DB_PASSWORD=****" in cast


def test_terminal_sessions_are_masked_in_the_recording(world, tmp_path):
    secrets = tmp_path / "tty.env"
    secrets.write_bytes(SECRETS)
    result = _ssh(world, f"cat {secrets}", "-tt")
    assert result.returncode == 0
    assert b"hunter2-value" in result.stdout  # a terminal is not masked live
    _cast_with(world, f"cat {secrets}")
    records = _all_records(world)
    for secret in GONE:
        assert secret not in records, secret


def test_secret_on_the_command_line_is_masked_in_audit_and_cast(world):
    result = _ssh(world, "echo connect --password=Sup3rS3cretPw >/dev/null")
    assert result.returncode == 0
    assert b"Sup3rS3cretPw" not in _all_records(world)


def test_binary_output_goes_to_a_side_file_with_its_sha256(world, tmp_path):
    blob = os.urandom(3 * 1024 * 1024) + b"\x00tail"
    path = tmp_path / "blob.bin"
    path.write_bytes(blob)
    result = _ssh(world, f"cat {path}; echo done")
    assert result.returncode == 0
    assert result.stdout == blob + b"done\n"
    cast, text = _cast_with(world, f"cat {path}; echo done")
    events = [json.loads(line) for line in text.splitlines()[1:]]
    marks = [e[2] for e in events if e[1] == "m"]
    summary = next(m for m in marks if m.startswith("binary output:"))
    stored = cast.with_suffix(".bin").read_bytes()
    assert stored.startswith(blob)  # "done" follows in the side file or as text
    text_out = "".join(e[2] for e in events if e[1] == "o").encode()
    assert stored[len(blob) :] + text_out == b"done\n"
    assert hashlib.sha256(stored).hexdigest() in summary and f"{len(stored)} bytes" in summary
    assert oct(cast.with_suffix(".bin").stat().st_mode & 0o777) == "0o640"
    # the cast stays a valid asciinema v2 file
    out = subprocess.run(["asciinema", "cat", str(cast)], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert len(cast.read_bytes()) < 64 * 1024  # no JSON copy of the binary


def test_zeros_are_holes_in_a_sparse_side_file(world, tmp_path):
    path = tmp_path / "zeros.bin"
    path.write_bytes(b"head" + bytes(4 * 1024 * 1024) + b"tail")
    result = _ssh(world, f"cat {path}")
    assert result.returncode == 0 and result.stdout == path.read_bytes()
    cast, _ = _cast_with(world, f"cat {path}")
    side = cast.with_suffix(".bin")
    assert side.read_bytes() == path.read_bytes()
    assert side.stat().st_blocks * 512 < 1024 * 1024  # the zeros take no disk


def test_a_held_partial_line_goes_out_when_the_stream_is_quiet(world):
    """A prompt that may start a secret is held back, then sent once the command goes
    quiet, so a program waiting for an answer never waits for ever."""
    import select
    import time

    cmd = ["ssh", "-F", str(world.alice.config), "-J", "bastion", f"{LOGIN}@web1"]
    proc = subprocess.Popen(
        [*cmd, "printf 'API_TOKEN prompt: '; read answer; echo \"got $answer\""],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        seen, deadline = b"", time.monotonic() + 20
        while b"prompt: " not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                seen += os.read(proc.stdout.fileno(), 1024)
        assert seen == b"API_TOKEN prompt: "  # arrived while the command still waits
        proc.stdin.write(b"yes\n")
        proc.stdin.close()
        assert proc.stdout.read() == b"got yes\n"
        assert proc.wait(20) == 0
    finally:
        proc.kill()
