"""The cast writer: valid v2 line by line, UTF-8 safe across chunks, bounded."""

from __future__ import annotations

import json

from bastion.record.cast import CastWriter, cast_path


def _events(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:]]


def test_header_and_events(tmp_path):
    path = cast_path(tmp_path, "s1", when=0)
    assert path.parts[-4:] == ("1970", "01", "01", "s1.cast")
    cast = CastWriter(
        path, width=100, height=30, command="ls", title="t", extra={"bastion": {"user": "alice"}}
    )
    cast.marker("decision allow")
    cast.output(b"hello\n")
    cast.resize(120, 40)
    cast.close("exit status 0")
    header, events = _events(path)
    assert header["version"] == 2 and header["width"] == 100 and header["command"] == "ls"
    assert header["bastion"] == {"user": "alice"}
    assert [e[1] for e in events] == ["m", "o", "r", "m"]
    assert events[1][2] == "hello\n" and events[2][2] == "120x40"
    assert all(a[0] <= b[0] for a, b in zip(events, events[1:], strict=False))


def test_utf8_split_across_chunks_is_kept_whole(tmp_path):
    path = tmp_path / "c.cast"
    cast = CastWriter(path)
    data = "héllo ✓".encode()
    for i in range(len(data)):
        cast.output(data[i : i + 1])
    cast.close()
    _, events = _events(path)
    assert "".join(e[2] for e in events if e[1] == "o") == "héllo ✓"


def test_invalid_utf8_becomes_replacement_not_an_error(tmp_path):
    path = tmp_path / "c.cast"
    cast = CastWriter(path)
    cast.output(b"\xff\xfeok\x00")
    cast.close()
    _, events = _events(path)
    assert events[0][2] == "\ufffd\ufffdok\x00"


def test_output_limit_applies_to_stored_bytes_and_is_marked(tmp_path):
    path = tmp_path / "c.cast"
    cast = CastWriter(path, max_output_bytes=40)
    cast.output(b"0123456789")
    cast.output(b"\0" * 10)  # 60 bytes of JSON: reaches the limit
    cast.output(b"more")
    cast.close()
    _, events = _events(path)
    out = "".join(e[2] for e in events if e[1] == "o")
    assert out == "0123456789" + "\0" * 10
    marks = [e[2] for e in events if e[1] == "m"]
    assert any("limit of 40 bytes reached" in m for m in marks)
    assert any("4 bytes of output not stored" in m for m in marks)
    assert cast.dropped_bytes == 4


def test_writes_are_visible_before_close(tmp_path):
    """Each event reaches the file at once: a crash keeps everything written so far."""
    path = tmp_path / "c.cast"
    cast = CastWriter(path)
    cast.output(b"first\n")
    _, events = _events(path)
    assert events[0][2] == "first\n"
    cast.close()


def test_audit_records_bound_client_strings(tmp_path):
    import json

    from bastion.record import AuditLog
    from bastion.record.audit import bounded

    log = AuditLog(tmp_path / "audit.jsonl")
    long = "echo " + "x" * 70000
    log.write("decision", **bounded(long))
    log.write("decision", **bounded("ls"))
    log.close()
    first, second = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert len(first["command"]) == 4096 and first["command_truncated"] is True
    assert first["command_bytes"] == len(long) and "command_sha256" not in first
    assert second["command"] == "ls" and "command_truncated" not in second
