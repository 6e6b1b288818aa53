import warnings
from pathlib import Path

import pytest

from bastion.policy import Policy, load_policy
from bastion.tomlsource import TomlSource

ROOT = Path(__file__).resolve().parents[2]

# Hypothesis imports libcst lazily to print a patch when a property test fails; libcst
# warns on import, and with warnings as errors that crash hides the failing example.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        import hypothesis.extra._patching  # noqa: F401
    except Exception:  # noqa: BLE001 - optional; only makes failure reports readable
        pass


@pytest.fixture(scope="session")
def shipped() -> Policy:
    return load_policy(TomlSource.load(ROOT / "policies.toml")).for_tests()
