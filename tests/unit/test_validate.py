"""What may go upstream: locale variables with UTF-8 values, sane terminal types."""

from __future__ import annotations

import pytest

from bastion.ssh.validate import (
    clip,
    forwardable_env,
    is_bastion_option,
    locale_value_ok,
    signal_name_ok,
    term_type_ok,
)


@pytest.mark.parametrize(
    "value,ok",
    [
        ("C", True),
        ("POSIX", True),
        ("C.UTF-8", True),
        ("C.utf8", True),
        ("en_US.UTF-8", True),
        ("de_DE.utf8", True),
        ("ca_ES.UTF-8@valencia", True),
        ("ja_JP.SJIS", False),
        ("zh_CN.GBK", False),
        ("zh_CN.GB18030", False),
        ("en_US", False),  # charset defaults to ISO-8859-1
        ("en_US.ISO-8859-1", False),
        ("C.UTF-8\x00x", False),
        ("", False),
        ("../../etc/passwd", False),
    ],
)
def test_locale_values(value, ok):
    assert locale_value_ok(value) is ok


def test_only_exact_locale_names_pass():
    env = {
        "LANG": "C.UTF-8",
        "LC_ALL": "C",
        "LC_CTYPE": "en_US.UTF-8",
        "LANGUAGE": "fr",
        "LANGFOO": "C",
        "LC_FOO": "C",
        "LD_PRELOAD": "/tmp/x.so",
        "BASTION_WAIT": "0",
    }
    assert forwardable_env(env) == {"LANG": "C.UTF-8", "LC_ALL": "C", "LC_CTYPE": "en_US.UTF-8"}
    assert is_bastion_option("BASTION_WAIT") and not is_bastion_option("LANG")


@pytest.mark.parametrize(
    "term,ok",
    [("xterm-256color", True), ("screen.xterm", True), ("vt100", True),
     ("xterm\x00evil", False), ("", True), ("a" * 65, False), ("x;rm", False)],
)  # fmt: skip
def test_terminal_types(term, ok):
    assert term_type_ok(term) is ok


def test_signal_names_and_clipping():
    assert signal_name_ok("INT") and signal_name_ok("USR1")
    assert not signal_name_ok("INT\x00") and not signal_name_ok("int")
    assert clip("x" * 300, 10) == "xxxxxxxxxx...(290 more)"
    assert clip("a\x1b[2Jb") == "a\\x1b[2Jb"
