"""The lexical half of the shell reader: words, quotes, expansions, redirections.

``Lexer`` reads one word at a time the way bash does before it runs a command: quote
removal, ``$'...'`` decoding, brace expansion (see ``words``), and every expansion that
can run code (``$(...)``, backticks, ``<(...)``, ``${...}``, ``$((...))``, here-doc
bodies with an unquoted delimiter) is parsed in place, its commands listed with the rest.
The grammar (lists, pipelines, compound commands) is in ``shparse``.

Limits, in the open: nothing is evaluated; an expansion leaves ``words.DYN`` in the word
and marks it dynamic. Unterminated quotes, expansions and here-docs, arithmetic nested
deeper than ``MAX_DEPTH`` and a parse past its deadline raise ``ShellSyntaxError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .arith import (
    BASH_INTEGERS,
    BASH_NUMBERS,
    BASH_RUNTIME,
    ArithNames,
    only_digit_substitutions,
    printers_used,
    tainted_reads,
)
from .words import DYN, ShellSyntaxError, Word, ansi_c_decode, make_word

__all__ = ["Lexer", "Redirect", "SimpleCommand", "MAX_DEPTH", "MAX_COMMANDS", "META"]

MAX_DEPTH = 40
MAX_COMMANDS = 4000
META = " \t\n;&|()<>"
_COND_META = " \t\n;"
#: a word followed by an argument (never valid arithmetic: operands need an operator)
_WORDS = re.compile(r"[A-Za-z_][\w.-]*\s+(?:[\w/~.'\"$`\\]|-[A-Za-z-])")
_HIST = re.compile(r"![A-Za-z0-9!$?#*:^\-]")
_ARITH_PAYLOAD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\[[^\]]*(\$\(|`)")
#: ${$}, ${?}, ${#}, ${#name}, ${#arr[@]}: always digits
#: $$ $? $# and read-only ids print digits; $USER and $LOGNAME a login name (no slash,
#: never empty, never "." or "..") - once ``decide.trusted`` saw nothing assign them
_NAME_PARAMS = frozenset({"$", "?", "#", "UID", "EUID", "PPID", "USER", "LOGNAME"})
_DIGIT_PARAMS = re.compile(r"\$\{([$?#]|#[A-Za-z_][A-Za-z0-9_]*(\[[@*0-9]\])?|UID|EUID|PPID)\}")
#: date +FORMAT made only of numeric conversions and separators: never empty, never a
#: slash, a space or a letter word (no %D %x %c %e %n %t, no literal letters but T)
_DATE_FORMAT = re.compile(r"\+(?=.*%)(%[-0^#]?[0-9]?[YmdHMSsFTjuVGgyCNIUWwz]|%%|[-.:,+T0-9])+")
_PID_FLAGS = frozenset({"-f", "-x", "-i", "-n", "-o", "-s", "-fx", "-xf", "-if", "-fi", "--full"})
_DATE_OPTS = re.compile(r"-u|--utc|--universal|-I(date|hours|minutes|seconds|ns)?|--iso-8601")


def _prints_digits(cmds: list[SimpleCommand]) -> bool:
    """A substitution that prints only digits and separators: ``$(date +%F)``,
    ``$(id -u)``, ``$(nproc)``, ``$(pgrep -f x)`` (the caller checks these names are not
    redefined)."""
    if len(cmds) != 1:
        return False
    cmd = cmds[0]
    if cmd.assigns or cmd.redirects or not cmd.words or any(w.dynamic for w in cmd.words):
        return False
    name, args = cmd.words[0].value, [w.value for w in cmd.words[1:]]
    if name == "date":
        rest = iter(args)
        for a in rest:
            if a in ("-d", "--date"):
                next(rest, None)  # the date to print: any text, printed per the format
            elif not (
                _DATE_FORMAT.fullmatch(a) or _DATE_OPTS.fullmatch(a) or a.startswith("--date=")
            ):
                return False
        return True
    if name in ("hostname", "whoami", "uname"):  # a name: never a slash, "." or ".."
        return all(a in ("-s", "--short", "-r", "-n", "-m", "-s", "-un") for a in args)
    if name == "id":
        return bool(args) and all(a in ("-u", "-g", "-ur", "-gr", "-ru", "-rg") for a in args)
    if name in ("pgrep", "pidof"):  # process ids (rules.pid_not_init tells which)
        opts = [a for a in args if a.startswith("-")]
        return len(args) > len(opts) and all(a in _PID_FLAGS for a in opts)
    return name == "nproc" and not args


_REDIRECT = re.compile(r"(\d+|\{[A-Za-z_][A-Za-z0-9_]*\})?(&>>|&>|<<<|<<-|<<|<>|<&|>&|>>|>\||<|>)")


@dataclass
class Redirect:
    """A redirection: ``op`` like ``>``, ``>>``, ``<``, ``<<``, ``<<<``, ``>&``, ``&>``."""

    op: str
    target: Word | None = None
    body: str | None = None  # here-doc body or here-string value
    body_expands: bool = False  # unquoted here-doc delimiter: body undergoes expansion
    delim: str = ""

    @property
    def writes(self) -> bool:
        return self.op in (">", ">>", ">|", "&>", "&>>", "<>", ">&")


@dataclass
class SimpleCommand:
    """One simple command as written: assignments, words, redirections, and where stdin
    comes from (the previous command of a pipeline)."""

    words: list[Word] = field(default_factory=list)
    assigns: list[tuple[str, Word]] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    piped_from: SimpleCommand | None = None
    tags: set[str] = field(default_factory=set)
    context: str = ""


#: ``${name[SUBSCRIPT]...}`` (not @ or *) or ``${name:OFFSET...}`` (not :- := :? :+).
_ARITH_PARAM = re.compile(
    r"[!#]?(?:[A-Za-z_][A-Za-z0-9_]*|[@*])"
    r"(?:\[(?![@*]\])([^\]]*)\]|(?:\[[@*]\])?:(?![-=?+])([^}]*))"
)
#: ``${NAME:=VALUE}``, ``${NAME=VALUE}``: an expansion that assigns NAME.
_PARAM_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[[^\]]*\])?:?=")


def _quote_end(s: str, i: int) -> int | None:
    """Index of the quote closing the one at ``s[i]``: ``$'..'`` takes backslash escapes,
    and a double-quoted ``"$(echo '"')"`` holds a substitution with quotes of its own."""
    if s[i] == "'":
        j = i + 1
        while j < len(s):
            if s[j] == "\\" and i and s[i - 1] == "$":
                j += 2
                continue
            if s[j] == "'":
                return j
            j += 1
        return None
    j = i + 1
    while j < len(s):
        c = s[j]
        if c == "\\":
            j += 2
            continue
        if c == '"':
            return j
        if s.startswith("$(", j):
            end = _paren_end(s, j + 2)
            if end is None:
                return None
            j = end
        elif c == "`":
            end = s.find("`", j + 1)
            if end < 0:
                return None
            j = end
        j += 1
    return None


def _paren_end(s: str, j: int) -> int | None:
    """Index of the ``)`` closing a ``$(`` whose text starts at ``j`` (quotes skipped)."""
    depth = 0
    while j < len(s):
        c = s[j]
        if c == "\\":
            j += 2
            continue
        if c in "'\"":
            end = _quote_end(s, j)
            if end is None:
                return None
            j = end
        elif c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                return j
            depth -= 1
        j += 1
    return None


class Lexer:
    """Cursor over the source with the reading state; ``shparse._Parser`` adds grammar."""

    def __init__(self, src: str, deadline: float, depth: int):
        self.s = src
        self.n = len(src)
        self.i = 0
        self.deadline = deadline
        self.depth = depth
        self.out: list[SimpleCommand] = []
        self.pending: list[Redirect] = []  # here-docs waiting for the next newline
        self.cond = False
        self.pipe_src: SimpleCommand | None = None
        self.context: list[str] = []
        self.functions: list[str] = []
        self.calls: dict[str, set[str]] = {}  # function -> first words of its body
        self.arith_spans: list[tuple[int, int]] = []  # arithmetic text in this source
        #: names this input set from run-time values (see ``arith``), and associative
        #: arrays it declared; shared with nested parsers
        self.tainted: set[str] = set()
        self.assoc: set[str] = set()
        #: programs whose digits-only output arithmetic trusted, and the functions this
        #: input defines (shared too): a function named like one voids the trust
        self.digit_uses: set[str] = set()
        self.defined: set[str] = set()
        #: declared -i (and bash's own integers): every assignment is arithmetic
        self.integers: set[str] = set(BASH_INTEGERS)
        #: names this input last set to a number (in source order); the names arithmetic
        #: reads and the names the input sets to anything but a number (``*``: names only
        #: known at run time), gathered over every string the input runs (see
        #: ``ArithNames``): arithmetic may read none of those
        self.numeric: set[str] = set()
        self.names = ArithNames()
        self.inherited = False  # a string another program runs: its variables may be set
        self.hist = False
        self.partial = False  # a piece of a larger input: here-doc bodies may be outside
        self.have_cmd = False  # a command precedes the cursor in this list (";" is valid)
        self.pending_cmd = False  # after "&&", "||" or "|": a command must follow
        self.open: dict[str, int] = {"fi": 0, "do": 0, "done": 0, "}": 0}
        #: trusted reading (see ``parse``): $HOME is ~, and expansions that print only
        #: digits mark their word ``safe`` (a path cannot climb out through them)
        self.trust = False
        self.last_safe = False  # the expansion just read is one of those
        self.unsafe = False  # the word being read holds an expansion that is not

    # ---- helpers ------------------------------------------------------------------
    def fail(self, msg: str) -> ShellSyntaxError:
        return ShellSyntaxError(f"{msg} at offset {self.i}")

    def emit(self, cmd: SimpleCommand) -> None:
        if len(self.out) >= MAX_COMMANDS:
            raise self.fail("too many commands")
        if self.context:
            cmd.context = self.context[-1]
        self.out.append(cmd)

    def sub(self, src: str, context: str = "") -> list[SimpleCommand]:
        """Parse nested source (backticks, here-doc bodies) with this parser's limits."""
        if self.depth + 1 > MAX_DEPTH:
            raise self.fail("nesting too deep")
        p = type(self)(src, self.deadline, self.depth + 1)
        p.trust = self.trust
        self.share(p)
        p.parse_list(frozenset())
        p.finish()
        for c in p.out:
            if context and not c.context:
                c.context = context
        return p.out

    def skip_blanks(self) -> None:
        s, n = self.s, self.n
        while self.i < n:
            c = s[self.i]
            if c in " \t":
                self.i += 1
            elif c == "\\" and s.startswith("\\\n", self.i):
                self.i += 2
            elif c == "#":
                while self.i < n and s[self.i] != "\n":
                    self.i += 1
            else:
                return

    def newline(self) -> None:
        """Consume a newline and read the bodies of pending here-docs after it."""
        self.i += 1
        pending, self.pending = self.pending, []
        # inside $( ) or <( ), bash also ends a here-document at its delimiter followed by
        # the closing ")", and reads on from that ")" (EOF); done)
        in_subst = any(c.endswith(" substitution") for c in self.context)
        for red in pending:
            delim = red.delim
            strip = red.op == "<<-"
            lines: list[str] = []
            while self.i < self.n:
                start = self.i
                end = self.s.find("\n", self.i)
                end = self.n if end < 0 else end
                line = self.s[self.i : end]
                self.i = min(end + 1, self.n)
                body = line.lstrip("\t") if strip else line
                if body == delim:
                    break
                if in_subst and body.startswith(delim + ")"):
                    self.i = start + len(line) - len(body) + len(delim)
                    break
                lines.append(line)
            else:
                if not self.partial:
                    raise self.fail(f"here-document without its end ({delim!r})")
            red.body = "\n".join(lines) + ("\n" if lines else "")
            if red.body_expands:
                self.scan_expansions(red.body)
            else:
                self.arith_payload(red.body)

    def scan_expansions(self, text: str) -> bool:
        """Emit commands from substitutions in here-doc-like text; True if any expansion."""
        if "$" not in text and "`" not in text:
            return False
        p = type(self)(text, self.deadline, self.depth + 1)
        p.trust = self.trust
        self.share(p)
        p.context = self.context[-1:]
        _, _, dynamic = p.read_word_chars(heredoc=True)
        self.out.extend(p.out)
        return dynamic

    # ---- tokens -------------------------------------------------------------------
    def peek_op(self) -> str | None:
        """The operator at the cursor (after blanks), or None if a word starts here."""
        self.skip_blanks()
        if self.i >= self.n:
            return "EOF"
        s, i = self.s, self.i
        c = s[i]
        if c == "\n":
            return "\n"
        if self.cond:
            if s.startswith("]]", i) and (i + 2 >= self.n or s[i + 2] in META):
                return "]]"
            return ";" if c == ";" else None
        if c not in ";&|()":
            return None
        for op in (";;&", ";;", ";&", "&&", "||", "|&", ";", "&", "|", "(", ")"):
            if s.startswith(op, i):
                if op in ("&",) and s.startswith("&>", i):
                    break
                return op
        return None

    def read_redirect(self) -> Redirect | None:
        """Read a redirection at the cursor (with an optional fd or {var} prefix)."""
        m = _REDIRECT.match(self.s, self.i)
        if not m or self.s.startswith(("<(", ">("), m.start(2)):
            return None
        if m.group(1) and m.group(2).startswith("&"):
            return None  # bash takes no descriptor before &>: "{f}&>x" runs a command {f}
        op = m.group(2)
        self.i = m.end()
        self.skip_blanks()
        if (self.i >= self.n or self.s[self.i] in "\n;&|()<>") and not self.s.startswith(
            ("<(", ">("), self.i
        ):  # done < <(cmd): a process substitution is a target
            raise self.fail(f"missing target for {op}")
        if op in (">&", "<&") and self.s.startswith("-", self.i):
            # bash closes the descriptor on the "-" alone: ">&-reboot" is "reboot 1>&-"
            self.i += 1
            return Redirect(op, Word("-", "-"))
        if op in ("<<", "<<-"):
            chars, _, _ = self.read_word_chars()
            start = m.end()
            raw_delim = self.s[start : self.i].strip()
            quoted = any(q in raw_delim for q in "'\"\\")
            red = Redirect(op, None, None, body_expands=not quoted, delim=chars.replace(DYN, "$"))
            self.pending.append(red)
            return red
        words = self.read_words()
        target = words[0] if words else Word("", dynamic=True)
        if op == "<<<":
            return Redirect(op, target, body=target.value)
        return Redirect(op, target)

    # ---- words --------------------------------------------------------------------
    def read_words(self) -> list[Word]:
        start = self.i
        outer, self.unsafe = self.unsafe, False
        chars, mask, dynamic = self.read_word_chars()
        safe, self.unsafe = dynamic and not self.unsafe, outer
        if self.i == start:  # an operator where a word must be: never loop on it
            raise self.fail(f"unexpected {self.s[self.i : self.i + 1]!r}")
        raw = self.s[start : self.i]
        if _HIST.search(raw) and "'" not in raw:
            self.hist = True
        quoted = "q" in mask and any(q in raw for q in "'\"\\$")
        if quoted:
            self.arith_payload(chars)
        return make_word(chars, mask, raw, dynamic, quoted, not self.cond, safe)

    def arith_payload(self, text: str) -> None:
        """Quoted text holding ``name[$(cmd)]``: a value that runs ``cmd`` when arithmetic
        reads it (``x='a[$(reboot)]'; echo $((x))``), also once printf or echo -e decode
        its escapes. It is a finding, since we do not follow variables."""
        if "[" in text and (
            _ARITH_PAYLOAD.search(text)
            or ("\\" in text and _ARITH_PAYLOAD.search(ansi_c_decode(text)))
        ):
            self.emit(SimpleCommand(tags={"arith-substitution"}))

    def read_word_chars(self, heredoc: bool = False, stop: str = "") -> tuple[str, str, bool]:
        """Read one word (or, for here-docs, all text); return value, quote mask, dynamic."""
        s, n = self.s, self.n
        chars: list[str] = []
        mask: list[str] = []
        dynamic = False
        meta = "" if heredoc else (_COND_META if self.cond else META)
        while self.i < n:
            c = s[self.i]
            if stop and c in stop:
                break
            if c in meta or (self.cond and c in "<>"):  # [[ -n <(cmd) ]] runs cmd
                if c in "<>" and s.startswith("(", self.i + 1) and (not chars or self.cond):
                    self.i += 2
                    self.substitution(")", "process substitution")
                    chars.append(DYN)
                    mask.append("q")
                    dynamic = True
                    self.unsafe = True
                    continue
                if c == "(" and chars and chars[-1] in "@!+*?" and mask[-1] == "u":
                    self.extglob(chars, mask)
                    continue
                if c in meta:
                    break
            if c == "\\":
                nxt = s[self.i + 1 : self.i + 2]
                if nxt == "\n":
                    self.i += 2
                    continue
                if not nxt:  # a backslash at the very end stays a backslash
                    chars.append(c)
                    mask.append("q")
                    self.i += 1
                    continue
                if heredoc:
                    if nxt in "$`\\":
                        chars.append(nxt)
                        mask.append("q")
                        self.i += 2
                    else:
                        chars.append(c)
                        mask.append("q")
                        self.i += 1
                    continue
                chars.append(nxt)
                mask.append("q")
                self.i += 2
                continue
            if c == "'" and not heredoc:
                end = s.find("'", self.i + 1)
                if end < 0:
                    raise self.fail("unterminated single quote")
                body = s[self.i + 1 : end]
                chars.append(body)
                mask.append("q" * len(body))
                self.i = end + 1
                continue
            if c == '"' and not heredoc:
                self.i += 1
                if self.dquote(chars, mask):
                    dynamic = True
                continue
            if c == "$":
                nxt = s[self.i + 1 : self.i + 2]
                if nxt == "'" and not heredoc:
                    end = self.i + 2
                    while end < n and s[end] != "'":
                        end += 2 if s[end] == "\\" else 1
                    if end >= n:
                        raise self.fail("unterminated $'")
                    body = ansi_c_decode(s[self.i + 2 : end])
                    chars.append(body)
                    mask.append("q" * len(body))
                    self.i = end + 1
                    continue
                if nxt == '"' and not heredoc:
                    self.i += 2
                    if self.dquote(chars, mask):
                        dynamic = True
                    continue
                exp = self.dollar()
                if exp == DYN:
                    dynamic = self.expanded(chars, mask)
                else:
                    chars.append(exp or "$")
                    mask.append("q" * len(exp or "$"))
                continue
            if c == "`":
                self.backtick()
                dynamic = self.expanded(chars, mask)
                continue
            chars.append(c)
            mask.append("q" if heredoc else "u")
            self.i += 1
        return "".join(chars), "".join(mask), dynamic

    def extglob(self, chars: list[str], mask: list[str]) -> None:
        depth = 0
        while self.i < self.n:
            c = self.s[self.i]
            chars.append(c)
            mask.append("u")
            self.i += 1
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    return
        raise self.fail("unterminated extglob")

    def dquote(self, chars: list[str], mask: list[str]) -> bool:
        """Read a double-quoted part (cursor after the quote); True if it expands."""
        s, n = self.s, self.n
        dynamic = False
        while self.i < n:
            c = s[self.i]
            if c == '"':
                self.i += 1
                return dynamic
            if c == "\\" and self.i + 1 < n:
                nxt = s[self.i + 1]
                if nxt == "\n":
                    self.i += 2
                    continue
                if nxt in '$`"\\':
                    chars.append(nxt)
                else:
                    chars.append("\\" + nxt)
                mask.append("q" * len(chars[-1]))
                self.i += 2
                continue
            if c == "$":
                exp = self.dollar()
                if exp == DYN:
                    dynamic = self.expanded(chars, mask)
                else:
                    chars.append(exp or "$")
                    mask.append("q" * len(exp or "$"))
                continue
            if c == "`":
                self.backtick()
                dynamic = self.expanded(chars, mask)
                continue
            chars.append(c)
            mask.append("q")
            self.i += 1
        raise self.fail("unterminated double quote")

    def expanded(self, chars: list[str], mask: list[str]) -> bool:
        """Put DYN for the expansion just read; note whether it keeps the word safe."""
        chars.append(DYN)
        mask.append("q")
        if not self.last_safe:
            self.unsafe = True
        return True

    def dollar(self) -> str | None:
        """Read an expansion at ``$`` (cursor moves past it): DYN, or in a trusted
        reading its known value ("~" for $HOME); None if ``$`` is a plain character.
        Sets ``last_safe`` when the expansion can only print digits."""
        s, start = self.s, self.i
        nxt = s[self.i + 1 : self.i + 2]
        self.last_safe = False
        if s.startswith("$((", self.i) and self.arith_end(self.i + 3) is not None:
            end = self.arith_end(self.i + 3)
            assert end is not None
            mark = len(self.out)
            self.arith(self.i + 3, end)
            self.i = end + 2
            self.last_safe = self.trust and len(self.out) == mark  # an integer
            return DYN
        if nxt == "(":
            self.i += 2
            mark = len(self.out)
            self.substitution(")", "command substitution")
            self.last_safe = self.trust and _prints_digits(self.out[mark:])
            return DYN
        if nxt == "[":
            end = s.find("]", self.i)
            if end < 0:
                raise self.fail("unterminated $[")
            self.arith(self.i + 2, end)
            self.i = end + 1
            return DYN
        if nxt == "{":
            self.i += 2
            self.braced()
            text = s[start : self.i]
            if text.endswith("@P}"):  # prompt expansion runs substitutions in the value
                self.emit(SimpleCommand(tags={"dynamic-code"}))
            if self.trust and text == "${HOME}":
                return "~"
            self.last_safe = self.trust and bool(
                _DIGIT_PARAMS.fullmatch(text) or text in ("${USER}", "${LOGNAME}")
            )
            return DYN
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!\-]").match(s, self.i + 1)
        if m:
            self.i = m.end()
            if self.trust and m.group() == "HOME":
                return "~"
            self.last_safe = self.trust and m.group() in _NAME_PARAMS
            return DYN
        self.i += 1
        return None

    def arith_end(self, start: int) -> int | None:
        """Index of the ``))`` closing arithmetic that starts at ``start``, else None."""
        depth, i, s = 0, start, self.s
        while i < self.n:
            c = s[i]
            if c == "(":
                depth += 1
                if depth > MAX_DEPTH:
                    raise self.fail("nesting too deep")
            elif c == ")":
                if depth == 0:
                    return i if s.startswith("))", i) else None
                depth -= 1
            elif c == "\\":
                i += 1  # an escaped character: \' is not a quote
            elif c in "'\"":
                end = _quote_end(s, i)
                if end is None:
                    return None
                i = end
            i += 1
        return None

    def arith(self, start: int, end: int) -> None:
        """Arithmetic text: a substitution inside is run and is itself a finding."""
        if self.depth == 0:
            self.arith_spans.append((start, end))
        text = self.s[start:end]
        self.arith_reads(text)
        if "$(" in text or "`" in text or "$[" in text:
            if only_digit_substitutions(text):
                self.digit_uses |= printers_used(text)
            else:
                self.emit(SimpleCommand(tags={"arith-substitution"}))
            self.scan_expansions(text)
        elif _WORDS.search(text) or any(q in text for q in "'\"\\"):
            # "$(( rm -rf / ))" is not arithmetic: bash fails on it, but a shell that read
            # "$( (" would run it, so that reading is judged too
            try:
                alt = self.sub(text, "if $((...)) were read as $( (...) )")
            except ShellSyntaxError:
                alt = []
            self.out.extend(c for c in alt if c.words)

    def share(self, p: Lexer) -> None:
        """What a nested parser of this input reads and adds to: variables, functions."""
        p.tainted, p.assoc, p.numeric = self.tainted, self.assoc, self.numeric
        p.digit_uses, p.defined, p.integers = self.digit_uses, self.defined, self.integers
        p.names = self.names
        p.inherited = self.inherited

    def arith_reads(self, text: str) -> None:
        """Arithmetic that reads a value only known at run time is a finding (see arith)."""
        if tainted_reads(text, self.tainted, self.vouched, self.numeric):
            self.emit(SimpleCommand(tags={"arith-runtime"}))

    def vouched(self, name: str, text: str) -> bool:
        """Whether arithmetic may read ``name`` as far as this point tells: bash's own
        numbers always; bash's run-time values (REPLY, OPTARG, ``_``...) never, nor, in a
        string another program runs, a name it did not set to a number itself. Every other
        name read is checked once the whole input is read (``ArithNames.unsafe``)."""
        if name in BASH_NUMBERS:
            return True
        if name in BASH_RUNTIME or (self.inherited and name not in self.numeric):
            return False
        self.names.reads.add(name)
        return True

    def sets(self, name: str, number: bool = False) -> None:
        """Note that the input sets ``name`` (to a number, or to anything else)."""
        if number:
            self.numeric.add(name)
        else:
            self.numeric.discard(name)
            self.names.changed.add(name)

    def braced(self) -> None:
        """Skip a ``${...}`` (cursor after the brace), emitting inner substitutions."""
        s, n = self.s, self.n
        start = self.i
        while self.i < n:
            c = s[self.i]
            if c == "}":
                self.i += 1
                m = _ARITH_PARAM.match(s, start, self.i - 1)
                if (
                    m
                    and m.group(1) is not None
                    and m.group().lstrip("!").split("[")[0] in self.assoc
                ):
                    return  # ${m[key]} of an associative array: not arithmetic
                if m:  # ${a[$i]}, ${s:$n:2}: the subscript or offset is arithmetic
                    self.arith_reads(m.group(1) or m.group(2) or "")
                if a := _PARAM_ASSIGN.match(s, start, self.i - 1):  # : ${PATH:=/tmp}
                    value = s[a.end() : self.i - 1]
                    self.emit(SimpleCommand(assigns=[(a.group(1), Word(DYN, value, True))]))
                    self.tainted.add(a.group(1))
                    self.sets(a.group(1))
                return
            if c == "\\":
                self.i += 2
            elif c == "'":
                end = s.find("'", self.i + 1)
                if end < 0:
                    raise self.fail("unterminated quote in ${")
                self.i = end + 1
            elif c == '"':
                self.i += 1
                self.dquote([], [])
            elif c == "$":
                self.dollar()
            elif c == "`":
                self.backtick()
            else:
                self.i += 1
        raise self.fail("unterminated ${")

    def backtick(self) -> None:
        s, i = self.s, self.i + 1
        body: list[str] = []
        while i < self.n and s[i] != "`":
            if s[i] == "\\" and i + 1 < self.n and s[i + 1] in "`$\\":
                body.append(s[i + 1])
                i += 2
            else:
                body.append(s[i])
                i += 1
        if i >= self.n:
            raise self.fail("unterminated backtick")
        self.i = i + 1
        cmds = self.sub("".join(body), "inside `...`")
        self.out.extend(cmds)
        self.last_safe = self.trust and _prints_digits(cmds)

    def substitution(self, close: str, what: str) -> None:
        """Parse ``$( ... )`` or ``<( ... )`` in place (cursor after the opening)."""
        if self.depth + len(self.context) > MAX_DEPTH:
            raise self.fail("nesting too deep")
        saved = self.cond, self.pipe_src, self.have_cmd, self.pending_cmd
        self.cond, self.pipe_src, self.have_cmd, self.pending_cmd = False, None, False, False
        self.context.append(f"inside {what}")
        self.parse_list(frozenset({close}))
        self.context.pop()
        self.cond, self.pipe_src, self.have_cmd, self.pending_cmd = saved

    def parse_list(self, stops: frozenset[str]) -> str:  # pragma: no cover - see shparse
        raise NotImplementedError

    def finish(self) -> None:  # pragma: no cover - see shparse
        raise NotImplementedError
