"""What AWX does around a job or an inventory update, done the same way here (docs/awx.md).

Read from AWX's own code (awx/main/tasks/jobs.py, awx/main/constants.py, the settings'
defaults; AWX 24): the private data dir it lays out, the environment variables it sets
for each kind of run, how it computes the collections paths from the project's
ansible.cfg, the args it gives ansible-inventory, how it stores what that prints, and
how it reads an "enabled variable". The run itself goes through ansible-runner with
process isolation in the execution environment's image, as AWX's receptor worker runs it
(with docker for the runtime here, podman in AWX).
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
from pathlib import Path

import ansible_runner

CONTAINER_ROOT = "/runner"  # where the private data dir is mounted in the EE
# settings/defaults.py: every ANSIBLE_* setting goes into every run's environment.
ANSIBLE_SETTINGS = {
    "ANSIBLE_HOST_KEY_CHECKING": "False",
    "ANSIBLE_PARAMIKO_RECORD_HOST_KEYS": "False",
    "ANSIBLE_FORCE_COLOR": "True",
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
}
# constants.py: STANDARD_INVENTORY_UPDATE_ENV.
INVENTORY_UPDATE_ENV = {
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
    "ANSIBLE_INVENTORY_EXPORT": "True",
    "ANSIBLE_VERBOSE_TO_STDERR": "True",
    "ANSIBLE_HOST_PATTERN_MISMATCH": "error",
}
DEFAULT_COLLECTIONS = "~/.ansible/collections:/usr/share/ansible/collections"
DEFAULT_ROLES = "~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles"


def read_ansible_config(project: Path, keys: list[str]) -> dict[str, str]:
    """AWX's read_ansible_config: the project's ansible.cfg [defaults] values it asks for."""
    parser = configparser.ConfigParser()
    parser.read(project / "ansible.cfg")
    if not parser.has_section("defaults"):
        return {}
    return {k: parser.get("defaults", k) for k in keys if parser.has_option("defaults", k)}


def _paths(env: dict, key: str, setting: str, *, default: str, folder: str, project: Path) -> str:
    """A path variable the way AWX builds it: requirements folder, the project's setting, the defaults."""
    paths = default.split(":")
    configured = read_ansible_config(project, [setting])
    if key in env:
        for path in env[key].split(":"):
            if path not in paths:
                paths = [env[key], *paths]
    elif setting in configured:
        for path in configured[setting].split(":"):
            if path not in paths:
                paths = [configured[setting], *paths]
    return os.pathsep.join([os.path.join(CONTAINER_ROOT, folder), *paths])


def job_env(pdd: Path, job_id: int, inventory_id: int, revision: str) -> dict[str, str]:
    """RunJob.build_env (AWX's callback plugins are not in this EE: the default stdout callback runs)."""
    env = {**ANSIBLE_SETTINGS, "AWX_PRIVATE_DATA_DIR": str(pdd)}
    env |= {"JOB_ID": str(job_id), "INVENTORY_ID": str(inventory_id), "PROJECT_REVISION": revision}
    env |= {"ANSIBLE_RETRY_FILES_ENABLED": "False", "MAX_EVENT_RES": "700000", "AWX_HOST": "https://awx.example.test"}
    env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = "/runner/cp"
    project = pdd / "project"
    for key, setting, folder, default in (
        ("ANSIBLE_COLLECTIONS_PATHS", "collections_paths", "requirements_collections", DEFAULT_COLLECTIONS),
        ("ANSIBLE_ROLES_PATH", "roles_path", "requirements_roles", DEFAULT_ROLES),
        ("ANSIBLE_COLLECTIONS_PATH", "collections_path", "requirements_collections", DEFAULT_COLLECTIONS),
    ):
        env[key] = _paths(env, key, setting, default=default, folder=folder, project=project)
    return env


def inventory_update_env(pdd: Path, source_id: int, update_id: int) -> dict[str, str]:
    """RunInventoryUpdate.build_env for a source sourced from a project: only the plural
    ANSIBLE_COLLECTIONS_PATHS, read from the project's `collections_paths`."""
    env = {**ANSIBLE_SETTINGS, "AWX_PRIVATE_DATA_DIR": str(pdd)}
    env |= {"INVENTORY_SOURCE_ID": str(source_id), "INVENTORY_UPDATE_ID": str(update_id), **INVENTORY_UPDATE_ENV}
    project = pdd / "project"
    key = "ANSIBLE_COLLECTIONS_PATHS"
    env[key] = _paths(
        env, key, "collections_paths", default=DEFAULT_COLLECTIONS, folder="requirements_collections", project=project
    )
    env[key] += ":/usr/share/automation-controller/collections"
    return env


def inventory_update_args(source_path: str, update_id: int) -> list[str]:
    """RunInventoryUpdate.build_args for a project file (source_path relative to the project)."""
    location = os.path.join(CONTAINER_ROOT, "project", source_path)
    output = os.path.join(CONTAINER_ROOT, "artifacts", str(update_id), "output.json")
    return ["--list", "--export", "-i", location, "--output", output, "--playbook-dir", os.path.dirname(location)]


def private_data_dir(root: Path, project: Path) -> Path:
    """The layout AWX writes for a run: the project copy, inventory/, env/, artifacts/."""
    root.mkdir(parents=True)
    shutil.copytree(project, root / "project", symlinks=True)
    for folder in ("inventory", "env", "artifacts"):
        (root / folder).mkdir()
    # AWX's own runner settings for every run (RunJob and RunInventoryUpdate alike).
    (root / "env" / "settings").write_text(json.dumps({"suppress_ansible_output": True}))
    return root


def inventory_script(pdd: Path, data: dict) -> str:
    """inventory/hosts as AWX writes it from its database: a script that prints the inventory."""
    path = pdd / "inventory" / "hosts"
    path.write_text(f"#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint({json.dumps(data)!r})\n")
    path.chmod(0o700)
    return str(path)


def enabled(hostvars: dict, enabled_var: str, enabled_value: str | None) -> bool | None:
    """AWX's inventory_import _get_enabled: a dotted path into the host's variables."""
    missing = object()
    value = hostvars
    for key in enabled_var.split("."):
        if not hasattr(value, "get"):
            value = missing
            break
        value = value.get(key, missing)
    if value is missing:
        return None
    if enabled_value is not None:
        return str(enabled_value).lower() == str(value).lower()
    return bool(value)


def run_in_ee(pdd: Path, image: str, env: dict, **kwargs) -> ansible_runner.Runner:
    """ansible-runner with process isolation in the EE, as AWX's worker runs it (docker here)."""
    return ansible_runner.run(
        private_data_dir=str(pdd),
        process_isolation=True,
        process_isolation_executable="docker",
        container_image=image,
        # AWX adds --user=root; the docker socket stands for AWX_ISOLATION_SHOW_PATHS here:
        # the lab's hosts are containers, reached through the engine (community.docker.docker_api).
        container_options=["--user=root"],
        container_volume_mounts=["/var/run/docker.sock:/var/run/docker.sock"],
        envvars=env,
        quiet=True,
        **kwargs,
    )
