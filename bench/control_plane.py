"""Bench part 5: site.yml on the lab (fresh and idempotent runs)."""

from __future__ import annotations

import re
import subprocess
import time

from labctl import ROOT

ANSIBLE = {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}


def timed(argv: list[str], env: dict | None = None) -> tuple[float, str]:
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT, env=env)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed: {(result.stdout + result.stderr)[-3000:]}")
    return elapsed, result.stdout


def site_yml(extra: list[str], env: dict, inventory: str = "inventories/lab") -> dict:
    """One site.yml run on the lab: wall time and the recap's changed count."""
    argv = [str(ROOT / ".venv/bin/ansible-playbook"), "-i", inventory, "site.yml", *extra]
    if env.get("RTMPEDGE_LAB_VARS"):
        argv += ["-e", "@" + env["RTMPEDGE_LAB_VARS"]]
    seconds, out = timed(argv, {**env, "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false"})
    changed = sum(int(n) for n in re.findall(r"changed=(\d+)", out.split("PLAY RECAP")[-1]))
    return {"seconds": seconds, "changed": changed}
