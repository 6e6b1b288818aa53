"""load_policy rejects every bad key, type and value with file, line and key."""

import pytest

from bastion.errors import ConfigError
from bastion.policy import load_policy
from bastion.tomlsource import TomlSource


def _load(tmp_path, text):
    path = tmp_path / "policies.toml"
    path.write_text(text)
    return load_policy(TomlSource.load(path))


@pytest.mark.parametrize(
    "text,needle",
    [
        ('[policy]\non_unknown = "allow"\n', "on_unknown"),
        ("[policy]\nfoo = 1\n", "unknown key"),
        ('[policy]\nmax_command_bytes = "x"\n', "must be a int"),
        ('[[rules]]\nid = "a"\naction = "nuke"\nprogram = "rm"\n', "rules[0].action"),
        ('[[rules]]\nid = "a"\naction = "deny"\nprogramm = "rm"\n', "unknown key"),
        ('[[rules]]\nid = "a"\naction = "deny"\n', "at least one matcher"),
        ('[[rules]]\nid = "a"\naction = "deny"\nsql = "("\n', "regular expression"),
        ('[[rules]]\nid = "a"\naction = "deny"\nprogram = 3\n', "must be a string"),
        (
            '[[rules]]\nid = "a"\naction = "deny"\nprogram = "x"\n[[rules]]\nid = "a"\n'
            'action = "deny"\nprogram = "y"\n',
            "duplicate",
        ),
        ('[[tests]]\ncommand = "ls"\nexpect = "maybe"\n', "expect"),
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
