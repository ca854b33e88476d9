"""Run one of the collection's modules for real: ansible-playbook, local connection, this machine."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def run_module(workdir: Path, module: str, args: dict, *, check: bool = False, diff: bool = False) -> dict:
    """The module's registered result (`failed` and `msg` included when it fails)."""
    result_file = workdir / f"{module.rsplit('.', 1)[-1]}-result.json"
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {module: args, "register": "result", "ignore_errors": True},
                {
                    "ansible.builtin.copy": {"content": "{{ result | to_json }}", "dest": str(result_file)},
                    "check_mode": False,
                    "diff": False,
                },
            ],
        }
    ]
    path = workdir / "play.yml"
    path.write_text(yaml.safe_dump(play))
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    argv = [str(REPO / ".venv/bin/ansible-playbook"), "-i", "localhost,", "-c", "local", str(path)]
    argv += ["-e", "ansible_python_interpreter=/usr/bin/python3"]
    argv += (["--check"] if check else []) + (["--diff"] if diff else [])
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(result_file.read_text())
