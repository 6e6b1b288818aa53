"""Programs we do not know: they may run their arguments as a command.

``gosu root CMD``, ``perf stat CMD``, ``poetry run CMD``, ``tmux new 'CMD'``, ``ansible all
-a 'CMD'``, ``fd -x CMD``: there are more programs that start other programs than any
table of wrappers can list. So a program that is in none of our tables (``wrappers``,
``programs``, ``NOT_WRAPPERS`` below) gets a second reading: from each argument that names
a program in ``TRIGGERS`` onward, the rest of the line is judged as a command (with
arguments it might append, unknown), and each argument that reads as a command line
starting with such a program is judged as that command line. The most restrictive
reading wins, as everywhere.

Limits: ``TRIGGERS`` holds programs dangerous on their own and unlikely to be a
subcommand word (not ``init``, ``install``, ``kill``, ``cp``: ``terraform init``,
``pip install``, ``pm2 kill``); a tool that runs ``init`` or ``cp`` through an unknown
wrapper is judged as that wrapper only. Readings do not nest (an unknown program inside
a reading gets no reading of its own), and at most ``MAX_READINGS`` are made per command.
"""

from __future__ import annotations

__all__ = [
    "NOT_WRAPPERS",
    "TRIGGERS",
    "MAX_READINGS",
    "BUILTINS",
    "SHORT_NAMES",
    "is_trigger",
]

MAX_READINGS = 4

#: Programs whose arguments never name a command to run (or whose ways of running one
#: are handled elsewhere): they get no generic reading. Free text is common in their
#: arguments (messages, patterns, package and file names).
NOT_WRAPPERS = frozenset(
    """
    ls cat tac less more most head tail grep egrep fgrep zgrep rg ag ack journalctl df du
    free uptime ps top htop atop btop iotop id whoami hostname hostnamectl uname date echo
    printf pwd wc sort uniq cut paste join comm column tr fold fmt nl rev expand unexpand
    stat file which whereis whatis apropos man info help type ss netstat ip lsblk blkid
    dmesg w who last lastlog users groups getent finger logger wall write mesg
    notify-send mail mailx sendmail cowsay figlet banner toilet espeak say zenity dialog
    whiptail jq yq xq gron base64 base32 md5sum sha1sum sha224sum sha256sum sha384sum
    sha512sum b2sum cksum sum xxd od hexdump strings diff cmp sdiff colordiff wdiff
    patch touch mkdir mktemp realpath readlink basename dirname pathchk seq shuf factor
    expr bc dc numfmt tput clear reset stty tty locale iconv dos2unix unix2dos
    gzip gunzip zcat bzip2 bunzip2 bzcat xz unxz xzcat zstd unzstd lz4 pigz 7z 7za unzip
    zipinfo cpio ar
    curl wget http https aria2c httpie ping ping6 traceroute tracepath mtr dig nslookup
    host whois arp arping ethtool iw iwconfig nmcli resolvectl timedatectl localectl
    chronyc ntpq ntpstat tcpdump tshark nmap iperf iperf3 ab siege hey wrk
    openssl ssh-keygen ssh-keyscan ssh-add ssh-copy-id gpg gpg2 keytool certbot
    apt apt-get apt-cache apt-mark dpkg dpkg-query aptitude yum dnf rpm zypper apk
    pacman snap flatpak brew port pkg emerge nix-env pip pip3 pipx npm pnpm yarn gem
    cargo go rustup conda mamba nvm fnm volta asdf pyenv rbenv nodenv mise sdk
    git gh glab hub svn hg
    kubectl helm kustomize k9s kubectx kubens stern minikube kind k3s crictl ctr
    docker podman nerdctl buildah skopeo terraform tofu terragrunt packer vault consul
    nomad ansible-playbook ansible-inventory ansible-galaxy ansible-doc ansible-vault
    systemctl service journalctl loginctl busctl systemd-analyze systemd-cgls
    systemd-cgtop coredumpctl update-rc.d chkconfig
    mount umount findmnt losetup swapon swapoff lsof fuser pgrep pidof pstree kill
    pkill killall nice renice vmstat iostat mpstat pidstat sar nproc lscpu lsmem lspci
    lsusb lsmod modinfo sensors smartctl uptime tload slabtop numastat
    chmod chown chgrp umask cp mv ln rm rmdir install rsync scp sftp tar zip dd shred
    tee sed awk gawk mawk find xargs make cmake ninja meson bazel gradle mvn ant
    python python3 node java javac mvn sbt lein
    pytest tox nox black ruff flake8 pylint mypy isort prettier eslint tsc jest vitest
    mocha shellcheck hadolint yamllint markdownlint pre-commit
    crontab atq atrm chsh chfn usermod useradd userdel groupadd groupdel passwd chage
    vim vi nvim nano emacs ed ex code
    nginx apachectl apache2ctl httpd haproxy varnishadm pg_isready pg_dump pg_dumpall
    pg_restore pg_ctl pg_ctlcluster pg_lsclusters mysqladmin mysqldump mysqlcheck
    redis-benchmark etcdctl
    ldd objdump nm readelf size strip objcopy addr2line c++filt patchelf setcap getcap
    chcon restorecon semanage update-alternatives alternatives lsattr namei
    aws gsutil bq az doctl hcloud oci
    """.split()
)

#: Programs that, named inside another program's arguments, start a reading.
TRIGGERS = frozenset(
    """
    rm rmdir unlink shred wipe srm rimraf wipefs dd mkfs mke2fs mkswap mkdosfs mkntfs
    fdisk sfdisk cfdisk parted gdisk sgdisk blkdiscard truncate chmod chown chgrp chattr
    setfacl shutdown reboot poweroff telinit kexec killall killall5 pkill sudo doas su
    runuser pkexec sh bash dash zsh ksh mksh ash fish csh tcsh busybox toybox
    python python2 python3 perl ruby php psql mysql mariadb sqlite3 redis-cli mongo
    mongosh kubectl oc terraform tofu terragrunt helm systemctl crontab iptables
    ip6tables nft ufw userdel usermod passwd chpasswd sysctl nohup timeout nice xargs
    ssh rsync zpool zfs lvremove vgremove pvremove mdadm cryptsetup dmsetup nvme hdparm
    docker podman nerdctl eval
    nc ncat netcat socat telnet auditctl setenforce useradd adduser groupadd groupdel
    groupmod gpasswd insmod rmmod modprobe setcap visudo vipw vigr ldconfig node lua
    irb xonsh elvish nu ksh93 rbash yash
    """.split()
)

#: Shell builtins: they never run their arguments (those that do are handled in
#: ``normalize``: eval, source, trap, command, builtin, exec, ...).
BUILTINS = frozenset(
    """
    cd pushd popd dirs echo printf read export declare typeset local readonly set unset
    shift return exit break continue true false : test [ let wait jobs fg bg disown
    umask ulimit type hash history fc getopts mapfile readarray shopt times suspend
    logout caller compgen complete compopt bind help enable
    """.split()
)


def is_trigger(name: str) -> bool:
    """A program whose name inside another program's arguments starts a reading."""
    return name in TRIGGERS or name.startswith("mkfs.")


#: Short names people give these tools (shell aliases, or scripts in PATH): a program so
#: named is also judged as the tool (``k delete ns prod``), unless the input defines it.
SHORT_NAMES = {"k": "kubectl", "kc": "kubectl", "tf": "terraform", "tg": "terragrunt"}
