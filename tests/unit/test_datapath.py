"""The data path's pure parts: config sections, SFTP wire parsing, forward rules."""

from __future__ import annotations

import struct

import pytest

from bastion.config import load_config
from bastion.errors import ConfigError
from bastion.flows import sftp_wire as wire
from bastion.forwards import ForwardSection, allowed_forward, forward_rules
from bastion.home import init_home


@pytest.fixture
def home(tmp_path):
    init_home(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ("[[masks]]\nid = 'a'\nregex = '(['\n", 3, "masks[0].regex", "not a valid regular"),
        ("[[masks]]\nid = 'a'\nregex = 'x*'\n", 3, "masks[0].regex", "empty string"),
        ("[[masks]]\nid = 'a'\nregex = 'x'\n[[masks]]\nid = 'a'\nregex = 'y'\n", 5,
         "masks[1].id", "used twice"),
        ("[masking]\nbuiltins = ['jwt', 'ssn']\n", 2, "masking.builtins[1]", "must be one of"),
        ("[[forwards]]\nid = 'f'\ngroups = ['ops']\nto = ['db']\n", 4, "forwards[0].to",
         "HOST:PORT"),
        ("[[forwards]]\nid = 'f'\nto = ['db:5432']\n", 1, "forwards[0].groups", "missing"),
        ("[recording]\nmax_binary_mb = 0\n", 2, "recording.max_binary_mb", "at least 1"),
    ],
)  # fmt: skip
def test_config_errors_name_line_and_key(home, text, line, key, words):
    (home / "policies.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(home)
    err = info.value
    assert (err.line, err.key) == (line, key), str(err)
    assert words in str(err)


def test_shipped_policy_has_all_builtin_masks_and_no_forwards(home):
    config = load_config(home)
    assert len(config.masking.builtins) == 7 and config.masking.live
    assert config.forwards == ()


def _packet(ptype: int, req_id: int, body: bytes) -> bytes:
    payload = struct.pack(">BI", ptype, req_id) + body
    return struct.pack(">I", len(payload)) + payload


def _s(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def test_packets_cut_anywhere_and_requests_parsed():
    open_req = _packet(wire.FXP.OPEN, 7, _s(b"/etc/shadow") + struct.pack(">I", 1) + b"\0" * 4)
    rename = _packet(wire.FXP.EXTENDED, 8, _s(b"posix-rename@openssh.com") + _s(b"a") + _s(b"b"))
    read = _packet(wire.FXP.READ, 9, _s(b"h1") + struct.pack(">QI", 65536, 32768))
    stream = open_req + rename + read
    reader = wire.PacketReader()
    packets = []
    for i in range(len(stream)):
        packets += reader.feed(stream[i : i + 1])
    assert packets == [open_req, rename, read]
    o, r, d = map(wire.parse_request, packets)
    assert (o.id, o.paths, o.flags, o.kind) == (7, (b"/etc/shadow",), 1, "open")
    assert (r.kind, r.paths) == ("paths", (b"a", b"b"))
    assert (d.handle, d.offset, d.length) == (b"h1", 65536, 32768)
    assert wire.parse_request(wire.with_id(read, 42)).id == 42


def test_unknown_extension_and_bad_packets():
    unknown = _packet(wire.FXP.EXTENDED, 1, _s(b"copy-data") + b"\0" * 8)
    assert wire.parse_request(unknown).kind == "unknown"
    with pytest.raises(wire.WireError):
        wire.PacketReader().feed(struct.pack(">I", wire.MAX_PACKET + 1))
    with pytest.raises(wire.WireError):
        wire.parse_request(_packet(wire.FXP.OPEN, 1, _s(b"/x")[:3]))


def test_version_keeps_only_known_extensions():
    body = struct.pack(">I", 3) + _s(b"posix-rename@openssh.com") + _s(b"1")
    body += _s(b"copy-data") + _s(b"1") + _s(b"limits@openssh.com") + _s(b"1")
    version = struct.pack(">I", len(body) + 1) + bytes([wire.FXP.VERSION]) + body
    out = wire.filter_version(version)
    assert b"posix-rename" in out and b"limits@openssh.com" in out and b"copy-data" not in out


def test_forward_rules_match_group_host_and_port():
    rules = forward_rules(
        [ForwardSection(id="g", groups=["ops"], to=["grafana.internal:3000", "10.0.0.*:*"])]
    )
    assert allowed_forward(rules, "a", ["ops"], "GRAFANA.internal", 3000) is not None
    assert allowed_forward(rules, "a", ["ops"], "grafana.internal", 3001) is None
    assert allowed_forward(rules, "a", ["dev"], "grafana.internal", 3000) is None
    assert allowed_forward(rules, "a", ["ops"], "10.0.0.9", 22) is not None
