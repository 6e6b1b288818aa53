"""How each program reads its arguments: option specs and options that carry commands.

Why per program: ``[ $i -lt 400 ]``, ``find -name``, ``kill -TERM``, ``java -jar`` are not
GNU option clusters; reading them as ``-l -t`` or ``-T -E -R -M`` invents options (and
hides operands such as kill's ``-1``). A program listed here is read its own way (see
``getopt.Spec.style``); any other program is read GNU-style, which errs towards seeing
more options and operands.

Limits: the tables list the options that matter for rules and for finding operands, not
every option of every tool; a value option missing here makes its value read as an
operand (more to match, never less).
"""

from __future__ import annotations

from .getopt import Spec, spec
from .wrappers import VIM_VARIANTS

__all__ = [
    "OPT_SPECS",
    "GLOBAL_SPECS",
    "TAKES_COMMAND_OPTS",
    "RUNS_COMMAND",
    "OUTPUT_OPTS",
    "OUTPUT_OPERANDS",
    "OUTPUT_DIR_OPTS",
    "INPUT_OPTS",
    "TARGET_DIR_OPTS",
]

#: Options whose value is a file the program writes (judged like a ``>`` redirect).
OUTPUT_OPTS: dict[str, frozenset[str]] = {
    "curl": frozenset(
        "-o --output -D --dump-header -c --cookie-jar --trace --trace-ascii --stderr "
        "--libcurl --hsts --alt-svc --etag-save".split()
    ),
    "sort": frozenset({"-o", "--output"}),
    "openssl": frozenset({"-out", "-keyout"}),
    "tar": frozenset({"-f", "--file"}),
    "pg_dump": frozenset({"-f", "--file"}),
    "mysqldump": frozenset({"-r", "--result-file"}),
    "zstd": frozenset({"-o"}),
    "patch": frozenset({"-o", "--output"}),
    "gpg": frozenset({"-o", "--output"}),
    "find": frozenset({"-fprint", "-fprint0", "-fprintf", "-fls"}),
    "shuf": frozenset({"-o", "--output"}),
    "iconv": frozenset({"-o", "--output"}),
    "strace": frozenset({"-o", "--output"}),
    "ltrace": frozenset({"-o", "--output"}),
    "tcpdump": frozenset({"-w"}),
    "sdiff": frozenset({"-o", "--output"}),
    "pg_dumpall": frozenset({"-f", "--file"}),
    # log, capture, object and message files written wherever they are told
    "wget": frozenset(
        "-O --output-document -o --output-file -a --append-output --save-cookies "
        "--rejected-log".split()
    ),
    "psql": frozenset({"-o", "--output", "-L", "--log-file"}),
    "mysql": frozenset({"--tee"}),
    "mariadb": frozenset({"--tee"}),
    "uudecode": frozenset({"-o", "--output-file"}),
    "tshark": frozenset({"-w"}),
    "dumpcap": frozenset({"-w"}),
    "msgfmt": frozenset({"-o", "--output-file"}),
    "strip": frozenset({"-o"}),
    "gcc": frozenset({"-o"}),
    "g++": frozenset({"-o"}),
    "cc": frozenset({"-o"}),
    "clang": frozenset({"-o"}),
    "csplit": frozenset({"-f", "--prefix"}),
    "nmap": frozenset({"-oN", "-oG", "-oX", "-oA", "-oS"}),
    "ssh-keyscan": frozenset(),
}

#: Operands a program writes, by position among its operands (``uniq IN OUT``,
#: ``xxd IN OUT``): ``uniq /dev/null /etc/passwd`` empties /etc/passwd.
OUTPUT_OPERANDS: dict[str, int] = {"uniq": 1, "xxd": 1, "lz4": 1, "script": 0, "split": 1}

#: Options whose value names a directory the program writes into, under names it picks
#: (``wget -P ~/.ssh URL`` writes ~/.ssh/NAME).
OUTPUT_DIR_OPTS: dict[str, frozenset[str]] = {
    "wget": frozenset({"-P", "--directory-prefix"}),
    "curl": frozenset({"--output-dir"}),
    "cpio": frozenset({"-D", "--directory"}),
    "7z": frozenset({"-o"}),
    "7za": frozenset({"-o"}),
    "bsdtar": frozenset({"-C", "--cd", "--directory"}),
    "dpkg-deb": frozenset(),
}

#: Options whose value is a file the program reads, for programs whose operands are not
#: read (``file -f /etc/shadow`` prints each line of it in an error message).
INPUT_OPTS: dict[str, frozenset[str]] = {
    "file": frozenset({"-f", "--files-from", "-m", "--magic-file"}),
    "du": frozenset({"--files0-from"}),
    "find": frozenset({"-files0-from"}),
}

#: Options naming the destination of cp/mv/install/ln (else the last operand is).
TARGET_DIR_OPTS = frozenset({"-t", "--target-directory"})

OPT_SPECS: dict[str, Spec] = {
    "apt-get": spec("o:c:t:", "option config-file target-release"),
    "apt": spec("o:c:t:", "option config-file target-release"),
    "aptitude": spec("o:t:", "option target-release"),
    "kubectl": spec(
        "n:l:o:f:c:p:",
        "namespace selector output filename container context "
        "cluster kubeconfig user server token as field-selector grace-period "
        "timeout",
    ),
    # -f is --force for rm/rmi/kill and --filter elsewhere: read as a flag (more operands)
    "docker": spec("H:c:e:u:w:l:", "host context filter env user workdir config log-level"),
    "podman": spec("c:e:u:w:", "connection filter env user workdir"),
    "git": spec("C:c:", "git-dir work-tree namespace exec-path"),
    "systemctl": spec("H:M:t:p:s:n:o:", "host machine type property signal lines output root"),
    "journalctl": spec(
        "u:n:p:S:U:o:t:D:M:b::",
        "unit lines priority since until output identifier directory machine boot grep",
    ),
    "psql": spec(
        "c:d:h:p:U:f:v:o:L:T:F:R:P:",
        "command dbname host port username file "
        "set variable output log-file field-separator record-separator pset",
    ),
    "mysql": spec("e:h:u:P:D:S:p::", "execute host user port database socket password tee"),
    "mariadb": spec("e:h:u:P:D:S:p::", "execute host user port database socket password tee"),
    "uudecode": spec("o:", "output-file"),
    "ssh-keygen": spec("a:b:C:D:E:f:F:I:J:j:K:M:m:N:n:O:P:R:r:s:t:V:w:Y:Z:z:", ""),
    "tshark": spec("i:f:w:r:c:a:b:Y:T:e:E:o:X:", ""),
    "dumpcap": spec("i:f:w:c:a:b:", ""),
    "msgfmt": spec("o:D:", "output-file directory"),
    "strip": spec("o:R:K:N:", ""),
    "gcc": spec("o:I:L:l:D:U:x:", ""),
    "g++": spec("o:I:L:l:D:U:x:", ""),
    "cc": spec("o:I:L:l:D:U:x:", ""),
    "clang": spec("o:I:L:l:D:U:x:", ""),
    "csplit": spec("f:b:n:", "prefix suffix-format digits"),
    "split": spec("a:b:C:l:n:t:", "suffix-length bytes line-bytes lines number separator"),
    "nmap": spec("p:e:S:D:g:iL:", "oN oG oX oA oS iL script", single_dash_long=True),
    "cpio": spec("D:F:I:O:H:E:R:", "directory file format pattern-file owner"),
    "7z": spec("o:p:t:m:r::w:x:i:", ""),
    "7za": spec("o:p:t:m:r::w:x:i:", ""),
    "bsdtar": spec("f:C:b:T:X:I:", "file cd directory files-from exclude"),
    "redis-cli": spec(
        "h:p:a:n:u:s:r:i:d:D:t:",
        "user pass sni cacert cacertdir cert key tls-ciphers tls-ciphersuites pattern "
        "count quoted-pattern rdb functions-rdb intrinsic-latency pipe-timeout eval "
        "memkeys-samples cluster lru-test",
        "tls insecure askpass raw no-raw csv quoted-input show-pushes stat latency "
        "latency-history latency-dist replica pipe bigkeys memkeys hotkeys scan "
        "ldb ldb-sync-mode verbose no-auth-warning help version",
    ),
    "sqlite3": spec(
        "",
        "cmd init separator nullvalue newline vfs maxsize mmap pagecache lookaside heap",
        "bail batch column csv echo header noheader html interactive json line list "
        "markdown quote readonly safe stats table tabs box ascii append deserialize zip",
        single_dash_long=True,
    ),
    "mongosh": spec("u:p:", "eval username password host port file"),
    "mongo": spec("u:p:", "eval username password host port"),
    "clickhouse-client": spec("q:h:u:d:", "query host user database password port"),
    "sqlcmd": spec("Q:q:S:U:P:d:i:", ""),
    "cqlsh": spec("e:u:p:k:f:", "execute username password keyspace file"),
    "cockroach": spec("e:", "execute url host database user"),
    "tail": spec("n:c:s:", "lines bytes sleep-interval pid"),
    "head": spec("n:c:", "lines bytes"),
    "grep": spec(
        "e:f:m:A:B:C:d:D:",
        "regexp file max-count after-context before-context "
        "context include exclude exclude-dir label color colour binary-files",
    ),
    "sort": spec(
        "k:t:o:S:T:",
        "key field-separator output buffer-size temporary-directory compress-program "
        "files0-from random-source",
    ),
    "cut": spec("d:f:c:b:", "delimiter fields characters bytes"),
    "tar": spec(
        "f:C:b:T:X:I:",
        "file directory to-command checkpoint-action exclude use-compress-program files-from "
        "info-script new-volume-script rsh-command rmt-command",
    ),
    "rsync": spec("e:f:", "rsh rsync-path filter exclude include"),
    "curl": spec(
        "o:d:H:X:u:A:e:F:T:x:w:m:K:b:c:D:",
        "output data header request user dump-header cookie-jar trace trace-ascii stderr "
        "libcurl hsts alt-svc etag-save output-dir",
    ),
    "find": spec(
        "",
        "name iname path ipath wholename iwholename regex iregex lname ilname "
        "type xtype mtime mmin atime amin ctime cmin newer anewer cnewer size user "
        "group uid gid perm links inum samefile maxdepth mindepth fstype used "
        "regextype printf fprint fprint0 fprintf fls context newermt newerct "
        "newerat files0-from D",
        single_dash_long=True,
    ),
    "java": spec(
        "",
        "jar cp classpath module-path p m module add-modules",
        single_dash_long=True,
        style="leading",
    ),
    "openssl": spec(
        "",
        "in out key passin passout config CAfile CApath cert certfile "
        "signkey inkey outform inform keyform name section extfile extensions "
        "days subj set_serial connect servername md cipher keyout newkey pkeyopt CAkey CA",
        single_dash_long=True,
    ),
    "wget": spec(
        "O:o:a:P:e:i:",
        "output-document output-file append-output directory-prefix execute input-file",
    ),
    "pg_dump": spec("f:d:h:p:U:n:t:F:", "file dbname host port username schema table format"),
    "mysqldump": spec("r:u:h:P:S:p::", "result-file user host port socket password"),
    "scp": spec("c:F:i:J:l:o:P:S:D:X:", ""),
    "sftp": spec("B:b:c:D:F:i:J:l:o:P:R:S:s:X:", ""),
    "zip": spec("", "TT -unzip-command b n t tt x i", single_dash_long=True),
    "make": spec(
        "f:C:I:j::l::o:W:E:",
        "file makefile directory include-dir jobs load-average "
        "old-file what-if new-file assume-new assume-old eval",
    ),
    "less": spec(
        "b:h:j:k:o:O:p:P:t:T:x:y:z:", "log-file LOG-FILE pattern prompt tag tag-file tabs"
    ),
    "cp": spec("t:S:", "target-directory suffix backup reflink sparse preserve no-preserve"),
    "mv": spec("t:S:", "target-directory suffix backup"),
    "install": spec("t:m:o:g:S:", "target-directory mode owner group suffix"),
    "ln": spec("t:S:", "target-directory suffix backup"),
    "crontab": spec("u:", ""),
    "unzip": spec("d:x:P:", ""),
    "sed": spec("e:f:l:i::", "expression file line-length"),
    "terraform": spec(single_dash_long=True),
    "kill": spec(style="kill"),
    "pkill": spec(
        "s:u:U:g:G:P:t:F:",
        "signal euid uid pgroup group parent terminal pidfile ns nslist",
        numeric=True,
    ),
    "killall": spec("s:u:o:y:", "signal user older-than younger-than", numeric=True),
    "awk": spec("F:v:f:e:i:l:", "field-separator assign file source include load"),
    "gawk": spec("F:v:f:e:i:l:", "field-separator assign file source include load"),
    "dd": spec(""),
    "truncate": spec("s:r:", "size reference", "no-create io-blocks"),
    "shred": spec("n:s:", "iterations size random-source", "exact force verbose zero remove"),
    "helm": spec("n:f:", "namespace values kube-context"),
    "uniq": spec("f:s:w:", "skip-fields skip-chars check-chars"),
    "xxd": spec("c:g:l:o:s:n:C:", "cols groupsize len offset seek name"),
    "script": spec("c:E:I:O:B:T:t::", "command echo log-in log-out log-io log-timing timing"),
    "file": spec("f:m:F:e:P:", "files-from magic-file separator exclude parameter"),
    "shuf": spec("o:n:i:", "output head-count input-range random-source"),
    "iconv": spec("f:t:o:", "from-code to-code output"),
    "sdiff": spec("o:w:", "output width"),
    "pg_dumpall": spec("f:d:h:p:U:", "file dbname host port username"),
    "tcpdump": spec("w:r:i:c:s:C:G:W:F:z:Z:y:", "interface"),
    "du": spec(
        "d:B:t:X:", "files0-from max-depth block-size threshold exclude-from exclude time-style"
    ),
    "mount": spec("o:t:L:U:T:BR", "options types label uuid fstab", "bind rbind move"),
    "date": spec("d:f:r:s:I::", "date file reference set iso-8601 rfc-3339"),
    "touch": spec("d:t:r:", "date reference time"),
}
for _alias, _orig in (
    ("mawk", "awk"),
    ("nawk", "awk"),
    ("valkey-cli", "redis-cli"),
    ("keydb-cli", "redis-cli"),
    ("nerdctl", "docker"),
    ("oc", "kubectl"),
):
    OPT_SPECS[_alias] = OPT_SPECS[_orig]

#: Options a program reads only before its subcommand (``git -c k=v log``, but
#: ``git switch -c BRANCH`` is the subcommand's own option): read for TAKES_COMMAND_OPTS.
GLOBAL_SPECS: dict[str, Spec] = {
    "git": spec(
        "C:c:", "git-dir work-tree namespace exec-path config-env super-prefix", style="leading"
    ),
}

#: apt and apt-get read the same -o keys: hooks, config files and directories, and
#: options handed on to dpkg (``Dpkg::Options::=--pre-invoke=...``).
_APT_RUNS = (
    frozenset({"-c", "--config-file"}),
    (
        "*invoke*",
        "*pre-install-pkgs*",
        "dir::bin::*",
        "apt::config*",
        "dir::etc*",
        "*proxy-auto-detect*",
    ),
    ("*--pre-invoke*", "*--post-invoke*", "*--status-logger*"),
)

#: One knowledge base of "this option, configuration key or argument makes the program
#: run another program" (hooks, pre-invoke options, wrappers, askpass and editor options,
#: post-rotate and post-capture commands). A command using one is tagged ``runs-command``
#: (held by the shipped rule of that name); where the value is a command line it is also
#: judged as one (TAKES_COMMAND_OPTS). Per program: options, ``KEY=`` patterns of
#: key=value options (case-insensitive globs), and argument globs.
RUNS_COMMAND: dict[str, tuple[frozenset[str], tuple[str, ...], tuple[str, ...]]] = {
    "tar": (
        frozenset(
            "--to-command --checkpoint-action --info-script -F --new-volume-script "
            "--rsh-command --rmt-command".split()
        ),
        (),
        ("--checkpoint-action=*", "--to-command=*"),
    ),
    "rsync": (frozenset({"--rsync-path"}), (), ("--rsync-path=*",)),
    "git": (
        frozenset({"--upload-pack", "--receive-pack", "--exec", "-u"}),
        (
            "core.pager",
            "core.editor",
            "core.sshcommand",
            "core.fsmonitor",
            "core.hookspath",
            "core.askpass",
            "core.gitproxy",
            "diff.external",
            "diff.*.command",
            "difftool.*",
            "mergetool.*",
            "merge.*.driver",
            "sequence.editor",
            "gpg.program",
            "gpg.*.program",
            "credential.helper",
            "credential.*.helper",
            "alias.*",
            "filter.*",
            "pager.*",
            "uploadpack.packobjectshook",
            "protocol.*.allow",
            "include.path",
            "includeif.*",
            "remote.*.uploadpack",
            "remote.*.receivepack",
            "sendemail.*cmd",
            "http.proxy",
        ),
        ("ext::*", "--upload-pack=*", "--receive-pack=*", "--exec=*"),
    ),
    "apt-get": _APT_RUNS,
    "apt": _APT_RUNS,
    "aptitude": (frozenset(), ("*invoke*", "*pre-install-pkgs*", "dir::bin::*"), ()),
    "dpkg": (
        frozenset({"--pre-invoke", "--post-invoke", "--status-logger"}),
        (),
        ("--pre-invoke=*", "--post-invoke=*", "--status-logger=*"),
    ),
    "tcpdump": (frozenset({"-z"}), (), ()),
    "zip": (frozenset({"-TT", "--unzip-command"}), (), ()),
    "man": (frozenset({"-P", "--pager", "-H", "--html"}), (), ("--pager=*", "--html=*")),
    "sudo": (frozenset({"-A", "--askpass"}), (), ()),
    "socat": (frozenset(), (), ("exec:*", "system:*", "EXEC:*", "SYSTEM:*", "*,exec=*")),
    "ssh": (
        frozenset(),
        ("proxycommand", "localcommand", "knownhostscommand", "permitlocalcommand"),
        (),
    ),
    "scp": (frozenset({"-S"}), ("proxycommand",), ()),
    "sftp": (frozenset({"-S", "-D", "-s"}), ("proxycommand",), ()),
    "sshfs": (frozenset(), ("ssh_command", "sftp_server"), ()),
    "mysql": (frozenset({"--pager"}), (), ("--pager=*",)),
    "cpio": (frozenset({"--rsh-command"}), (), ()),
    "wget": (frozenset({"--use-askpass"}), (), ("--use-askpass=*",)),
    "ansible": (
        frozenset(),
        (),
        ("shell", "command", "raw", "script", "-mshell", "-mcommand", "-mraw"),
    ),
    "flock": (frozenset({"-c", "--command"}), (), ()),
    "nmap": (frozenset({"--script", "-sC"}), (), ("--script=*",)),
    **{v: (frozenset({"-c", "--cmd", "-S"}), (), ()) for v in ("vim", *VIM_VARIANTS)},
    # rpm macros run shell (%(cmd)) and Lua (%{lua:...}) when expanded: rpm -E, --eval
    "rpm": (frozenset(), (), ("*%(*", "*%{lua:*", "*%[*")),
    "rpmbuild": (frozenset(), (), ("*%(*", "*%{lua:*")),
}

TAKES_COMMAND_OPTS = {  # options whose value is a command line the program will run
    "tar": ("--to-command", "--checkpoint-action", "--use-compress-program", "-I"),
    "sort": ("--compress-program",),
    "rsync": ("-e", "--rsh", "--rsync-path"),
    "git": ("-c",),
    "ssh": ("-o",),
    "scp": ("-o", "-S"),
    "sftp": ("-o", "-S"),
    "zip": ("-TT", "--unzip-command"),
    "tcpdump": ("-z",),
    "dpkg": ("--pre-invoke", "--post-invoke"),
    "man": ("-P", "--pager"),
    "flock": ("-c", "--command"),
}
for _name in (
    "[",
    "test",
    "expr",
    "echo",
    "printf",
    "true",
    "false",
    ":",
    "let",
    "sleep",
    "seq",
    "yes",
    "basename",
    "dirname",
):
    OPT_SPECS[_name] = spec(style="operands")
