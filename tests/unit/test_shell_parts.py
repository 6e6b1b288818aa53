"""The shell's transport-free parts: carried state, statements, password watch,
history file, bare-shell routing and the in-memory line editor."""

from __future__ import annotations

import asyncio
import shlex
import subprocess

import pytest
from prompt_toolkit.history import InMemoryHistory

from bastion.shell.bare import is_bare_shell
from bastion.shell.editor import LineEditor, LineTooLong
from bastion.shell.history import MAX_ENTRY_BYTES, ShellHistory, history_path
from bastion.shell.password import PasswordWatch
from bastion.shell.state import ShellState, is_state_line, mentions_state, parse_state
from bastion.shell.statements import ScriptError, StatementReader

# ---- carried state ----------------------------------------------------------------------


def _report(status: int, cwd: str, env: dict[str, str], before: bytes = b"") -> bytes:
    body = b"".join(f"{k}={v}".encode() + b"\0" for k, v in env.items())
    return before + b"\0BASTION-STATE\0" + f"{status}\0{cwd}\0".encode() + body


@pytest.mark.parametrize(
    "line, carried",
    [
        ("cd /tmp", True),
        ("cd", True),
        ("cd /tmp && export A=1; unset B", True),
        ("export A=$(date)", True),
        ("export X='a;b'", True),
        ("cd /tmp; ls", False),  # another command: runs on its own, nothing carried
        ("cd /tmp | cat", False),
        ("cd /tmp || true", False),
        ("cd /tmp &", False),
        ("cd x \\", False),  # continues on a line that is not there
        ("export A=1 <<EOF", False),
        ("ls", False),
        ("echo cd", False),
    ],
)
def test_state_lines(line, carried):
    assert is_state_line(line) is carried


def test_mentions_state():
    assert mentions_state("cd /tmp; ls") and mentions_state("ls && export A=1")
    assert not mentions_state("echo abcd") and not mentions_state("ls")


def test_compose_quotes_everything_the_bastion_adds(tmp_path):
    where = tmp_path / "it's $(here) %s"
    where.mkdir()
    state = ShellState(cwd=str(where), home="/root", base_env={"HOME": "/root"})
    state.keep({"A": "x'; rm -rf / #", "B": "two words"}, {"C"})
    lines = state.compose("echo ok").split("\n")
    # bash reads the prefix as exactly: cd and its check, one export, unset, the line
    assert shlex.split(lines[1]) == ["export", "A=x'; rm -rf / #", "B=two words"]
    assert lines[2] == "unset -v C" and lines[3] == "echo ok"
    out = subprocess.run(
        ["bash", "-c", state.compose('printf "%s|%s|%s" "$A" "$B" "$PWD"')], capture_output=True
    )
    assert out.stdout == f"x'; rm -rf / #|two words|{where}".encode(), out.stderr


def test_a_directory_swapped_for_a_link_stops_the_line(tmp_path):
    """Decided in one directory, never run in another: cd -P must land where decided."""
    real, other = tmp_path / "work", tmp_path / "elsewhere"
    real.mkdir()
    other.mkdir()
    state = ShellState(cwd=str(real), home="/root", base_env={})
    real.rename(tmp_path / "moved")
    real.symlink_to(other)
    out = subprocess.run(["bash", "-c", state.compose("touch probe")], capture_output=True)
    assert out.returncode == 1 and b"replaced by a link" in out.stderr
    assert not (other / "probe").exists()
    real.unlink()
    out = subprocess.run(["bash", "-c", state.compose("touch probe")], capture_output=True)
    assert out.returncode == 1 and b"is gone" in out.stderr


def test_state_report_is_read_from_the_last_mark():
    fake = _report(0, "/fake", {"A": "1"})  # printed by the line itself
    data = _report(0, "/etc", {"HOME": "/root", "A": "2", "PWD": "/etc"}, before=b"out\n" + fake)
    change = parse_state(data)
    assert change is not None and change.cwd == "/etc" and change.env["A"] == "2"
    assert change.output.startswith(b"out\n")
    assert parse_state(b"no report") is None


def test_apply_carries_changes_against_the_login_environment():
    state = ShellState.from_probe(_report(0, "/root", {"HOME": "/root", "PATH": "/bin", "X": "1"}))
    after = {"HOME": "/root", "PATH": "/bin:/opt", "NEW": "v", "PWD": "/tmp", "SHLVL": "2"}
    kept = state.apply(parse_state(_report(0, "/tmp", after)))
    assert kept == ({"PATH": "/bin:/opt", "NEW": "v"}, {"X"})
    assert state.cwd == "/tmp" and state.shown_cwd() == "/tmp"
    state.cwd = "/root/src"
    assert state.shown_cwd() == "~/src"


def test_functions_and_odd_names_are_not_carried():
    state = ShellState.from_probe(_report(0, "/root", {"HOME": "/root"}))
    env = {"HOME": "/root", "BASH_FUNC_f%%": "() { rm -rf /; }", "1A": "x", "ok_1": "y"}
    assert state.apply(parse_state(_report(0, "/root", env))) == ({"ok_1": "y"}, set())


def test_too_much_state_is_refused():
    state = ShellState.from_probe(_report(0, "/root", {"HOME": "/root"}))
    big = {"HOME": "/root", "BIG": "x" * 70000}
    assert isinstance(state.apply(parse_state(_report(0, "/root", big))), str)


# ---- statements of a script --------------------------------------------------------------


def _statements(script: bytes, chunk: int = 3) -> list[tuple[str, int]]:
    reader = StatementReader()
    out = []
    for i in range(0, len(script), chunk):
        reader.feed(script[i : i + chunk])
        while (s := reader.next()) is not None:
            out.append((s.text, s.line))
    reader.end()
    while (s := reader.next()) is not None:
        out.append((s.text, s.line))
    return out


def test_statements_span_lines_where_the_shell_would():
    script = (
        b"echo a\nif true; then\n  echo b\nfi\ncat <<EOF\nx\nEOF\n"
        b"echo c \\\n d\necho e &&\n echo f\nf()\n{\n  echo g\n}\necho last"
    )
    assert _statements(script) == [
        ("echo a", 1),
        ("if true; then\n  echo b\nfi", 2),
        ("cat <<EOF\nx\nEOF", 5),
        ("echo c \\\n d", 8),
        ("echo e &&\n echo f", 10),
        ("f()\n{\n  echo g\n}", 12),
        ("echo last", 16),
    ]


def test_unreadable_statement_stops_at_once_or_at_the_end():
    with pytest.raises(ScriptError, match="line 2"):
        _statements(b"echo a\nfi\necho b\n")
    with pytest.raises(ScriptError, match="line 2"):
        _statements(b"echo a\necho 'open\necho b\n")


def test_a_statement_is_bounded():
    reader = StatementReader(max_bytes=100)
    reader.feed(b"echo '" + b"x" * 200)
    with pytest.raises(ScriptError, match="longer than 100 bytes"):
        reader.next()


# ---- password prompts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "shown, asking",
    [
        (b"[sudo] password for alice: ", True),
        (b"Enter passphrase for key '/root/.ssh/id_ed25519': ", True),
        (b"Password:", True),
        (b"PIN: ", True),
        (b"Password: \r\nok\r\n", False),
        (b"$ ls\r\n", False),
    ],
)
def test_password_prompt_heuristic(shown, asking):
    watch = PasswordWatch()
    watch.output(shown)
    assert watch.asking is asking
    assert watch.input(b"secret") is (not asking)


def test_enter_ends_the_secret():
    watch = PasswordWatch()
    watch.output(b"Password: ")
    assert watch.input(b"hunter2\r") is False
    assert watch.input(b"ls\r") is True


# ---- history -------------------------------------------------------------------------------


def test_history_is_private_bounded_and_per_identity(tmp_path):
    path = history_path(tmp_path, "../alice", "web1")
    assert path.is_relative_to(tmp_path) and ".." not in path.parts
    history = ShellHistory(path, size=3)
    for i in range(7):
        history.store_string(f"echo {i}\nsecond line")
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    loaded = list(ShellHistory(path, size=3).load_history_strings())
    assert loaded == ["echo 6\nsecond line", "echo 5\nsecond line", "echo 4\nsecond line"]
    assert len(path.read_text().splitlines()) < 7  # compacted
    history.store_string("x" * (MAX_ENTRY_BYTES + 1))  # too big to keep
    assert "xxxx" not in path.read_text()
    path.write_text(path.read_text() + '"torn')
    assert len(list(ShellHistory(path, size=3).load_history_strings())) == 3


# ---- routing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command, bare",
    [
        ("bash", True),
        ("bash -s", True),
        ("/bin/sh -s", True),
        ("bash -l", True),
        ("bash -c ls", False),
        ("bash script.sh", False),
        ("bash -s; rm x", False),
        ("sudo -i", False),
        ("zsh", False),
        ("bash $X", False),
    ],
)
def test_bare_shell(command, bare):
    assert is_bare_shell(command) is bare


# ---- the line editor -----------------------------------------------------------------------


def _type(chunks: list[bytes], lines: int, *, max_bytes: int = 65536) -> tuple[list, bytes]:
    """Feed chunks while a prompt is shown (as the flow does); the first ``lines`` results."""

    async def main():
        out: list[bytes] = []
        editor = LineEditor(
            out.append, term="xterm", size=(80, 24), history=InMemoryHistory(), max_bytes=max_bytes
        )

        async def typist():
            for chunk in chunks:
                while not editor.active:
                    await asyncio.sleep(0.005)
                await asyncio.sleep(0.01)
                editor.feed(chunk)

        task = asyncio.ensure_future(typist())
        results: list = []
        while len(results) < lines:
            try:
                results.append(await asyncio.wait_for(editor.read_line("p$ "), 5))
            except LineTooLong as exc:
                results.append(exc)
        task.cancel()
        return results, b"".join(out)

    return asyncio.run(main())


def test_editor_keys_paste_interrupt_and_end():
    results, out = _type(
        [
            b"echo hi",
            b"\x1b[D\x1b[D",
            b"X",
            b"\r",
            b"\x1b[200~a\nb\x1b[201~\r",
            b"abc\x03",
            b"\x04",
        ],
        4,
    )
    assert results == ["echo Xhi", "a\nb", "", None]
    assert b"\x1b[?2004h" in out  # bracketed paste asked of the terminal


def test_keys_after_enter_are_dropped_not_run_later():
    results, _ = _type([b"first\rsecond\r", b"\x04"], 2)
    assert results == ["first", None]


def test_an_overlong_line_is_refused_not_cut():
    results, _ = _type([b"x" * 50, b"y" * 60, b"\r", b"\x04"], 2, max_bytes=100)
    assert isinstance(results[0], LineTooLong) and results[1:] == [None]


def test_typing_fast_path_keeps_the_screen_model_true():
    """Keys echoed without a full render: the final redraw shows exactly the line."""
    results, out = _type([b"ec", b"ho", b" one", b"\x7f", b"e", b"\r"], 1)
    assert results == ["echo one"]
    assert b"echo one" in out.replace(b"\x1b[0m", b"")


def test_a_long_here_doc_is_one_decision_and_nothing_is_lost():
    body = b"".join(b"line %d of the document\n" % i for i in range(2000))
    script = b"echo before\ncat <<EOF\n" + body + b"EOF\necho after\n"
    found = _statements(script, chunk=4096)
    assert found[0] == ("echo before", 1)
    assert found[1][0].startswith("cat <<EOF\n") and found[1][1] == 2
    assert "\n".join(text for text, _ in found) + "\n" == script.decode()
