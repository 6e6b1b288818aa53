"""What a command touches besides its arguments: paths, stdin, and files it writes.

``resolve_path`` resolves a path lexically against the working directory (the login's
home, ``~``, when none is known). ``stdin_of`` says what a command reads on stdin (a
here-doc, a here-string, a literal ``echo``/``printf`` pipe: every reading of its
escapes). ``writes`` lists files a program writes through options and operands (``tee``,
``cp``/``mv`` destinations, ``dd of=``, ``curl -o``, ``sed -i``, archive extraction).

Limits: symlinks on the target are not followed (``/tmp/x -> /etc`` is not /etc; links
and bind mounts made earlier in the same input are, see ``tools``); ``~user`` is taken
as ``/home/user``; a path climbing above ``~`` is unknown (the home's depth is unknown);
what ``cat FILE | sh`` or ``< FILE`` feeds is unknown, never guessed. Writes are known
only for the programs listed here and in ``programs.OUTPUT_OPTS``.
"""

from __future__ import annotations

import posixpath
import re

from .getopt import OptRead
from .programs import OUTPUT_DIR_OPTS, OUTPUT_OPERANDS, OUTPUT_OPTS, TARGET_DIR_OPTS
from .shparse import SimpleCommand
from .words import DYN, FOUND, MANY_WORDS, MORE, SOME, Word, ansi_c_decode

__all__ = [
    "resolve_path",
    "proc_view",
    "stdin_of",
    "sed_runs_code",
    "writes",
    "scp_sink_targets",
    "dest",
    "path_hijack",
    "system_bin",
    "program_name",
    "backup_copy",
]


#: Directories a copy goes into rather than replaces (the system dirs of rules.py).
_DIRS = frozenset(
    {
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib64",
        "/opt",
        "/root",
        "/sbin",
        "/srv",
        "/usr",
        "/var",
        "/usr/bin",
        "/usr/sbin",
        "/usr/lib",
        "/usr/local",
        "/usr/local/bin",
        "/etc/ssh",
        "/etc/systemd",
        "/etc/sudoers.d",
        "/etc/pam.d",
        "/etc/cron.d",
        "/root/.ssh",
        "/tmp",
    }
)
_COPIERS = frozenset({"cp", "mv", "install", "ln", "rsync", "scp", "ditto", "rclone"})


def scp_sink_targets(read: OptRead) -> list[Word]:
    """``scp -t DEST`` (the server side of legacy scp) writes DEST, or a file the client
    names inside DEST when it is a directory, and with ``-r`` a whole tree under it."""
    out: list[Word] = []
    for w in read.operands:
        out.append(w)
        out.append(Word(w.value.rstrip("/") + "/" + DYN, FOUND, True))
    return out


def writes(program: str, read: OptRead) -> list[Word]:
    """Files a program writes through its options and operands (curl -o, dd of=, tee F,
    cp SRC DEST, mv SRC DEST: the source goes away too)."""
    outs = OUTPUT_OPTS.get(program)
    found = [v for o, v in read.options if v is not None and outs and o in outs]
    dirs = OUTPUT_DIR_OPTS.get(program, frozenset())
    found += [_under_dir(v) for o, v in read.options if v is not None and o in dirs]
    at = OUTPUT_OPERANDS.get(program)
    if at is not None and len(read.operands) > at:
        found.append(read.operands[at])
    if program == "mount" and len(read.operands) >= 2 and _binds(read):
        found.append(read.operands[-1])  # mount --bind SRC /etc/passwd replaces what it names
    if program == "git" and len(read.operands) >= 3 and read.operands[0].value == "clone":
        found.append(_under_dir(read.operands[2]))  # git clone URL DIR fills DIR
    if program == "dd":
        found += [
            Word(w.value[3:], w.raw, w.dynamic, w.glob)
            for w in read.operands
            if w.value.startswith("of=")
        ]
    elif program in ("tee", "sponge"):
        found += read.operands
    elif program in ("wget", "curl") and not dirs & {o for o, _ in read.options}:
        found += _remote_names(program, read)
    elif program in ("awk", "gawk") and any(
        o in ("-i", "--include") and v is not None and v.value in ("inplace", "inplace.awk")
        for o, v in read.options
    ):
        scripted = any(o in ("-f", "--file", "-e", "--source") for o, _ in read.options)
        found += read.operands[0 if scripted else 1 :]
    elif program in ("sed", "perl") and any(
        o in ("-i", "--in-place") or o.startswith("-i") for o, _ in read.options
    ):
        scripted = any(o in ("-e", "--expression", "-f", "--file") for o, _ in read.options)
        found += read.operands[0 if scripted or program == "perl" else 1 :]
    elif program in ("tar", "unzip", "bsdtar", "cpio"):
        found += _extract_targets(program, read)
    elif program == "scp" and "-t" in {o for o, _ in read.options}:
        found += scp_sink_targets(read)
    elif program in _COPIERS:
        target = dest(program, read)
        if target is not None:
            sources = [w for w in read.operands if w is not target]
            found.append(target)
            into = (
                any(o in TARGET_DIR_OPTS for o, _ in read.options)
                or (target.value.endswith(("/", "/.")) or target.value in (".", ".."))
                and program != "rsync"
            )
            if not target.dynamic and (into or resolve_path(target.value, None) in _DIRS):
                for src in sources:  # "cp x /etc": writes /etc/x
                    name = src.value.rstrip("/").rsplit("/", 1)[-1]
                    if src.value.endswith("/") or not name or src.glob:  # rsync a/ /etc
                        found.append(Word(target.value.rstrip("/") + "/" + DYN, FOUND, True))
                    elif DYN in name:  # cp /data/$f /backup/: one name inside /backup
                        found.append(Word(target.value.rstrip("/") + "/" + DYN, SOME, True))
                    else:
                        found.append(
                            Word(target.value.rstrip("/") + "/" + name, src.raw, src.dynamic)
                        )
            if program == "mv":
                found += sources
    return found


def _binds(read: OptRead) -> bool:
    """``mount --bind``/``-B``/``--rbind``/``-o bind``: a path mounted over another."""
    for o, v in read.options:
        if o in ("--bind", "-B", "--rbind", "-R"):
            return True
        if (
            o in ("-o", "--options")
            and v is not None
            and {"bind", "rbind"} & set(v.value.split(","))
        ):
            return True
    return False


def _under_dir(w: Word) -> Word:
    """Some file under directory ``w``, named at run time (a download, a clone)."""
    return Word(w.value.rstrip("/") + "/" + DYN, SOME, True) if not w.dynamic else w


def _extract_targets(program: str, read: OptRead) -> list[Word]:
    """Where an archive is extracted: anything under -C / -d DIR (default: the cwd), or
    anywhere with ``tar -P`` (members named /etc/passwd are written there)."""
    names = {o for o, _ in read.options}
    first = read.operands[0].value if read.operands else ""
    if program == "tar" and not (
        names & {"-x", "--extract", "--get"}
        or (first and not first.startswith("-") and "x" in first and first.isalpha())
    ):
        return []
    if program == "cpio" and not names & {"-i", "--extract"}:
        return []
    where = [
        v for o, v in read.options if v is not None and o in ("-C", "--directory", "-d", "-D")
    ] or [Word(".")]
    if program in ("tar", "bsdtar") and (
        names & {"-P", "--absolute-names"} or (first.isalpha() and "P" in first)
    ):
        where.append(Word("/"))
    return [
        Word(w.value.rstrip("/") + "/" + DYN, SOME, True) if not w.dynamic else w for w in where
    ]


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def _remote_names(program: str, read: OptRead) -> list[Word]:
    """Files wget (without -O) and ``curl -O`` name after the URL, in the working
    directory: ``cd /etc/cron.d; wget URL/job`` writes /etc/cron.d/job."""
    opts = {o for o, _ in read.options}
    values = [v.value for _, v in read.options if v is not None]
    if opts & {"-e", "--execute", "--config", "-K"} or any("%output{" in v for v in values):
        return [Word(DYN, SOME, True)]  # a configuration or -w text names its own files
    if program == "wget" and opts & {"-O", "--output-document", "--spider"}:
        return []
    if program == "wget" and opts & {"-i", "--input-file"}:
        return [Word("./" + DYN, SOME, True)]  # names from the list
    if program == "curl" and not opts & {"-O", "--remote-name", "--remote-name-all"}:
        return []
    tree = program == "wget" and bool(opts & {"-r", "--recursive", "-m", "--mirror"})
    names: list[Word] = []
    for w in read.operands:
        if w.dynamic:
            names.append(Word("./" + DYN, SOME, True))
        elif not w.value.startswith("-"):  # a URL; without a scheme, http
            url = w.value.split("://", 1)[1] if _URL.match(w.value) else w.value
            path = url.partition("/")[2].split("?")[0].split("#")[0]
            name = path.rstrip("/").rsplit("/", 1)[-1] if path.rstrip("/") else "index.html"
            names.append(Word("./" + DYN, SOME, True) if tree else Word("./" + name, w.raw))
    return names


def dest(program: str, read: OptRead) -> Word | None:
    """The destination of a copy: ``-t DIR``, else the last operand."""
    if program not in _COPIERS:
        return None
    for o, v in read.options:
        if o in TARGET_DIR_OPTS and v is not None:
            return v
    if len(read.operands) == 1 and _may_be_words(read.operands[0]):
        return Word(DYN, read.operands[0].raw, True)  # cp "${a[@]}": its last word, unknown
    if program == "ln" and len(read.operands) == 1 and not read.operands[0].dynamic:
        name = read.operands[0].value.rstrip("/").rsplit("/", 1)[-1]
        return Word("./" + name, read.operands[0].raw)  # ln -s /tmp/x.pid: ./x.pid here
    return read.operands[-1] if len(read.operands) >= 2 else None


def _may_be_words(w: Word) -> bool:
    """Whether a word may expand to several (a glob, "$@", "${a[@]}", an unquoted $x)."""
    if w.raw == MORE:  # a guessed reading's "maybe more arguments": not a destination
        return False
    return w.glob or bool(MANY_WORDS.search(w.raw)) or (w.dynamic and not _QUOTED.fullmatch(w.raw))


def resolve_path(value: str, cwd: str | None) -> str | None:
    """Lexically resolve a path against cwd; None if only known at run time.

    No cwd means the login's home directory (where an SSH command starts), spelled
    ``~``; a path that climbs above ``~`` is unknown, since the home's depth is unknown.
    """
    if DYN in value:
        return None
    if value.startswith("~"):
        head, sep, tail = value.partition("/")
        if head == "~-":
            return None
        if head == "~+":
            head = cwd or "~"
        elif head == "~root":
            head = "/root"
        elif head != "~":
            head = "/home/" + head[1:]
        value = head + sep + tail
    if not value.startswith(("/", "~")):
        if cwd == "?":
            return None
        value = posixpath.join(cwd or "~", value)
    if value.startswith("~"):
        rel = posixpath.normpath(value[1:].lstrip("/") or ".")
        if rel == ".":
            return "~"
        return None if rel == ".." or rel.startswith("../") else "~/" + rel
    view = proc_view(value)
    if view:  # /proc/self/root/etc/shadow is /etc/shadow; /proc/1/cwd/x: a cwd we do not know
        return (
            "/" + posixpath.normpath("/" + (view.group(2) or "")).lstrip("/")
            if view.group(1) == "root"
            else None
        )
    return "/" + posixpath.normpath(value).lstrip("/")


#: Another process's view of the file system (a link the kernel resolves, not ``..``
#: of the lexical path): its root or its working directory, then the rest.
_PROC_VIEW = re.compile(
    r"/?proc/(?:self|thread-self|[0-9]+)(?:/task/[0-9]+)?/(root|cwd)(?:/(.*))?$"
)


def proc_view(value: str) -> re.Match[str] | None:
    """``/proc/PID/root/REST`` or ``/proc/PID/cwd/REST`` (empty and ``.`` parts ignored):
    group 1 is ``root`` or ``cwd``, group 2 the rest as written (``..`` kept)."""
    return _PROC_VIEW.match("/".join(p for p in value.split("/") if p not in ("", ".")))


_SYSTEM_BIN = frozenset(
    {
        "/bin",
        "/sbin",
        "/usr/bin",
        "/usr/sbin",
        "/usr/local/bin",
        "/usr/local/sbin",
        "/usr/libexec",
        "/snap/bin",
    }
)


def path_hijack(value: Word) -> bool:
    """A PATH that puts a directory users can write (., ~, /tmp, /home) before the rest."""
    for part in value.value.split(":"):
        if part.startswith(DYN):  # the old PATH (or something unknown)
            return not any(r.strip('"') in ("$PATH", "${PATH}") for r in value.raw.split(":"))
        path = resolve_path(part, None) if part else "~"
        if path is None or not path.startswith(("/usr/", "/opt/", "/bin", "/sbin", "/snap/")):
            return True
    return False


def system_bin(value: str) -> bool:
    """A program named by a path in a directory only the administrator writes."""
    path = resolve_path(value, None)
    return path is not None and posixpath.dirname(path) in _SYSTEM_BIN


def program_name(value: str) -> str:
    name = value.rstrip("/").rsplit("/", 1)[-1] if "/" in value else value
    return name or value


def _echo_readings(text: str) -> list[str]:
    """Every way an echo/printf could print ``text``: as is (bash echo), with C escapes
    (``echo -e``, printf, dash's echo) and with ``\\0NNN`` octal (``echo -e``)."""
    readings = [
        text,
        ansi_c_decode(text),
        ansi_c_decode(re.sub(r"\\0([0-7]{1,3})", lambda m: "\\" + m.group(1), text)),
    ]
    return list(dict.fromkeys(readings))


def stdin_of(sc: SimpleCommand) -> tuple[list[str], str]:
    """What a command reads on stdin: (readings of the text, kind), kind none | text |
    unknown. Several readings when the producer's behaviour varies (echo escapes)."""
    for red in reversed(sc.redirects):
        if red.op in ("<<", "<<-", "<<<"):
            body = red.body or ""
            if red.op == "<<<" and red.target is not None and red.target.dynamic:
                return [body.replace(DYN, "${_}")], "unknown"
            if red.op != "<<<" and red.body_expands and ("$" in body or "`" in body):
                return [body], "unknown"
            return [body], "text"
        if red.op in ("<", "<>", "<&"):
            return [], "unknown"
    src = sc.piped_from
    if src is None:
        return [], "none"
    if not src.words:
        return [], "unknown"
    name = program_name(src.words[0].value)
    if name in ("echo", "printf") and not any(w.dynamic for w in src.words[1:]):
        args = [w.value for w in src.words[1:] if not re.fullmatch(r"-[neE]+", w.value)]
        if name == "printf" and args:
            args[0] = re.sub(r"%[-+ #0-9.]*[sbqcdiuxXo]", "", args[0])
        return _echo_readings(" ".join(args)), "text"
    if name == "cat" and len(src.words) == 1:
        texts, kind = stdin_of(src)
        return (texts, kind) if kind == "text" else ([], "unknown")
    return [], "unknown"


def sed_runs_code(script: str) -> bool:
    """True if a sed script can run commands or write files (``e``, ``s///e``, ``w``)."""
    i, n = 0, len(script)
    while i < n:
        while i < n and script[i] in " \t\n;!{}":
            i += 1
        while i < n and (script[i].isdigit() or script[i] in "$,~+"):  # addresses
            i += 1
        if i < n and script[i] in "/\\":
            delim = script[i + 1] if script[i] == "\\" and i + 1 < n else "/"
            i += 2 if script[i] == "\\" else 1
            while i < n and script[i] != delim:
                i += 2 if script[i] == "\\" else 1
            i += 1
            continue
        if i >= n:
            return False
        c = script[i]
        if c in "sy":
            if i + 1 >= n:
                return False
            delim, i, parts = script[i + 1], i + 2, 0
            while i < n and parts < 2:
                if script[i] == "\\":
                    i += 2
                    continue
                if script[i] == delim:
                    parts += 1
                i += 1
            flags = re.match(r"[^;\n}]*", script[i:])
            if c == "s" and flags and re.search(r"[ew]", flags.group()):
                return True
            i += len(flags.group()) if flags else 0
        elif c in "ewW":
            return True
        elif c in "aicrRbtTv:#lqQ":
            end = script.find("\n", i)
            i = n if end < 0 else end
        else:
            i += 1
    return False


#: ``$(date +%F)``: a date of % specifiers and separators (no literal text: ``+.conf``).
#: Only specifiers that print digits (not %t, %e, %D: blanks, slashes; not %Z, %b:
#: names from the time-zone file or the locale, which TZ and LOCPATH may choose).
_DATE_FORMAT = r"\+(?:%[YmdHMSsFTjuVWyCgGNzIUw]|[-_.:])+"
_DATE_SUBST = rf"\$\(date(?:\s+-u)?\s+{_DATE_FORMAT}\)|`date(?:\s+-u)?\s+{_DATE_FORMAT}`"
_STAMP = rf"(?:[0-9]+|{_DATE_SUBST}|\$\$)"
#: The name a backup copy adds: a backup word and/or a stamp after a separator.
_BACKUP_SUFFIX = re.compile(  # (?i) for the words only: %Z is not %z
    rf"(?:[._-](?i:bak|backup|orig|old|save|prev)|~)(?:[._-]*{_STAMP})*~?"
    rf"|[._-]{_STAMP}(?:[._-]*{_STAMP})*"
)
_ONE_VARIABLE = re.compile(r'"\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})"')
_QUOTED = re.compile(r'"[^"]*"|[^"$`]*"[^"]*"')
_ENDS_IN_NAME = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*$")
#: cp's options that only say how to copy (not where, not with which suffix).
_PLAIN_COPY = re.compile(
    r"-[apvfinrRdPL]+|--(?:archive|verbose|force|interactive|no-clobber|recursive"
    r"|no-dereference|preserve(?:=[a-z,]+)?)"
)


def backup_copy(args: list[Word]) -> bool:
    """``cp -p app.conf app.conf.bak.$(date +%F)``, ``cp "$f" "$f.orig"``: one source
    copied next to itself under a backup name. Nothing loads such a name (its content is
    already on the host, next to it), so it changes no configuration."""
    words = [w for w in args if w.value != "--"]
    if len(words) < 2 or not all(_PLAIN_COPY.fullmatch(w.value) for w in words[:-2]):
        return False
    first, last = words[-2:]
    if first.glob or last.glob:
        return False  # a glob may match several sources
    if first.dynamic and not (_ONE_VARIABLE.fullmatch(first.raw) and _QUOTED.fullmatch(last.raw)):
        return False  # "$f" quoted is one word; $f, "$@", "${a[@]}" may be several
    if last.dynamic and not (_QUOTED.fullmatch(last.raw) or last.safe):
        return False  # unquoted, only digits do not split (safe: a trusted reading)
    src, dst = (w.raw.replace('"', "") if w.dynamic else w.value for w in (first, last))
    if not src or src.startswith("-") or not dst.startswith(src) or src.endswith("/"):
        return False
    if _ENDS_IN_NAME.search(src) and re.match(r"\w", dst[len(src) :]):
        return False  # "$f" and "$f_bak" are different variables
    suffix = dst[len(src) :]
    # with a dot or a tilde: run-parts, cron.d and sudoers.d skip the name too
    return bool(_BACKUP_SUFFIX.fullmatch(suffix)) and ("." in suffix or "~" in suffix)
