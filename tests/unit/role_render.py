"""Render a role's template in-process with the role's defaults and vars, through Ansible's Templar."""

from __future__ import annotations

from pathlib import Path

import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROLES = Path(__file__).resolve().parents[2] / "roles"


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def role_variables(role: str, **overrides) -> dict:
    """Defaults, then vars/main.yml, then overrides; strings trusted as templates like a role's own files."""
    variables = {
        **_yaml(ROLES / role / "defaults" / "main.yml"),
        **_yaml(ROLES / role / "vars" / "main.yml"),
        **overrides,
    }
    return {k: trust_as_template(v) if isinstance(v, str) else v for k, v in variables.items()}


def render_template(role: str, template: str, variables: dict) -> str:
    templar = Templar(loader=DataLoader(), variables={"ansible_managed": "Ansible managed", **variables})
    return templar.template(trust_as_template((ROLES / role / "templates" / template).read_text(encoding="utf-8")))
