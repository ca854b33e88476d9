"""Every role documents exactly its defaults in meta/argument_specs.yml, with matching defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = sorted(p for p in (Path(__file__).resolve().parents[2] / "roles").iterdir() if p.is_dir())


def _load(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_argument_spec_keys_match_defaults(role):
    defaults = _load(role / "defaults" / "main.yml")
    options = _load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert set(options) == set(defaults), (
        f"only in defaults: {sorted(set(defaults) - set(options))}; "
        f"only in argument_specs: {sorted(set(options) - set(defaults))}"
    )
    for name, value in defaults.items():
        assert options[name].get("default") == value, f"{role.name}: default of {name} differs"


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_public_variables_carry_the_role_prefix(role):
    defaults = _load(role / "defaults" / "main.yml")
    stray = [name for name in defaults if not name.startswith(f"{role.name}_")]
    assert not stray, f"{role.name}: variables without the '{role.name}_' prefix: {stray}"
