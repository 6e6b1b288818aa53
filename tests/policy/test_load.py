"""load_policy rejects every bad key, type and value with file, line and key."""

import pytest

from bastion.errors import ConfigError
from bastion.policy import load_policy
from bastion.tomlsource import TomlSource


def _load(tmp_path, text):
    path = tmp_path / "policies.toml"
    path.write_text(text)
    return load_policy(TomlSource.load(path))


R = '[[rules]]\nid = "a"\naction = "deny"\n'


@pytest.mark.parametrize(
    "text,needle",
    [
        ('[policy]\non_unknown = "allow"\n', "on_unknown"),
        ("[policy]\nfoo = 1\n", "unknown key"),
        ('[policy]\nmax_command_bytes = "x"\n', "policy.max_command_bytes: must be an integer"),
        ("[policy]\nmax_command_bytes = 0\n", "policy.max_command_bytes"),
        ("[policy]\ncrosscheck = 1\n", "must be true or false"),
        ('[[rules]]\nid = "a"\naction = "nuke"\nprogram = "rm"\n', "rules[0].action"),
        ('[[rules]]\nid = "a"\naction = "deny"\nprogramm = "rm"\n', "unknown key"),
        ('[[rules]]\nid = "a"\naction = "deny"\n', "at least one matcher"),
        ('[[rules]]\nid = "a"\naction = "deny"\nsql = "("\n', "regular expression"),
        ('[[rules]]\nid = "a"\naction = "deny"\nprogram = 3\n', "rules[0].program: must be a list"),
        (
            '[[rules]]\nid = "a"\naction = "deny"\nprogram = "x"\n[[rules]]\nid = "a"\n'
            'action = "deny"\nprogram = "y"\n',
            "duplicate",
        ),
        ('[[tests]]\ncommand = "ls"\nexpect = "maybe"\n', "expect"),
        ('[[tests]]\ncommand = "ls"\nexpect = "allow"\ngroup = ["x"]\n', "tests[0].group: unknown"),
        # closed vocabularies: a typo is an error, never a rule that matches nothing
        (R + 'program = "rm"\npaths = ["@sytem"]\n', "rules[0].paths: unknown class '@sytem'"),
        (R + 'tags = ["kills-everyting"]\n', "unknown tag 'kills-everyting'"),
        (R + 'program = "rm"\nredirects = ["@dynamic"]\n', "unknown class '@dynamic'"),
        (R + "program = []\n", "rules[0].program: must not be empty"),
        (R + 'program = ["rm", "rm"]\n', "duplicate entry 'rm'"),
        (R + 'program = ["rm", ""]\n', "non-empty"),
        (R + 'program = "rm"\noptions = ["r"]\n', "must start with -"),
        (R + 'program = "rm"\napprovers = ["leads"]\n', "need action = review"),
        (
            '[[rules]]\nid = "a"\naction = "review"\nprogram = "rm"\napproval_ttl = "10 min"\n',
            "rules[0].approval_ttl",
        ),
        (
            '[[rules]]\nid = "a"\naction = "review"\nprogram = "rm"\napprovals_required = 0\n',
            "rules[0].approvals_required",
        ),
        ('[[rules]]\nid = "default"\naction = "deny"\nprogram = "rm"\n', "reserved"),
        ('[[files]]\nid = "f"\naction = "deny"\npaths = ["/etc/*"]\nops = ["wrte"]\n', "ops"),
        ('[[files]]\nid = "f"\naction = "deny"\npaths = []\nops = ["read"]\n', "paths"),
        ('[[files]]\nid = "f"\naction = "deny"\nops = ["read"]\n', "files[0].paths: missing"),
        (
            '[[files]]\nid = "f"\naction = "deny"\npaths = ["/x"]\nops = ["read"]\nvia = ["ftp"]\n',
            "files[0].via",
        ),
        ('[[profiles]]\nid = "p"\ndefault = "review"\n', "needs a scope key"),
        ('[[profiles]]\nid = "p"\ndefault = "maybe"\ngroups = ["a"]\n', "profiles[0].default"),
    ],
)
def test_bad_policy(tmp_path, text, needle):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    assert needle in str(info.value)
    assert "policies.toml" in str(info.value)


def test_line_number(tmp_path):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, '[policy]\n\n[[rules]]\nid = "a"\naction = "nuke"\nprogram = "rm"\n')
    assert info.value.line == 5


def test_other_sections_ignored(tmp_path):
    p = _load(
        tmp_path, '[server]\nlisten = "x"\n[[rules]]\nid = "a"\naction = "deny"\nprogram = "rm"\n'
    )
    assert [r.id for r in p.rules] == ["a"]


def test_approval_keys(tmp_path):
    p = _load(
        tmp_path,
        '[[rules]]\nid = "a"\naction = "review"\nprogram = "rm"\napprovers = ["dba"]\n'
        'approvals_required = 2\napproval_ttl = "10m"\n',
    )
    r = p.rules[0]
    assert (r.approval.approvers, r.approval.required, r.approval.ttl) == (("dba",), 2, 600)
