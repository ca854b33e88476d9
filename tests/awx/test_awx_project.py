"""This repository as an AWX project, run the way AWX runs things (make awx-check, docs/awx.md).

A clone of the repository, a private data dir laid out as AWX lays it out, AWX's environment
for each kind of run, ansible-runner with process isolation in the execution environment
built from execution-environment.yml (image RTMPEDGE_EE_IMAGE), against the lab:

- an inventory update from the project's media_servers file, stored and read back as AWX does;
- site.yml as a job, twice: the second run changes nothing;
- playbooks/drain.yml with the survey's extra variables.

Each check also runs where it must fail: the inventory update from a clone whose ansible.cfg
is as it was before (collections_path only ./.collections).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(Path(__file__).parent))

import awx  # noqa: E402 - the AWX emulation beside this file
import lab  # noqa: E402 - scripts/lab.py

IMAGE = os.environ.get("RTMPEDGE_EE_IMAGE", "rtmpedge-ee:0.2.0")
SOURCE = "inventories/lab/02-lab.media_servers.yml"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def docker_client():
    client = lab.docker.from_env()
    running = {c.name for c in client.containers.list(filters={"label": f"{lab.LAB_LABEL}=1"})}
    wanted = {*lab.BALANCERS, *(lab.media_name(i) for i in (1, 2, 3))}
    if not wanted <= running:
        pytest.fail(f"the lab is not up (missing {sorted(wanted - running)}): make lab")
    client.images.get(IMAGE)  # built by scripts/awx-check.sh
    return client


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The project as AWX syncs it: a clone of the repository's committed tree, nothing generated."""
    clone = tmp_path_factory.mktemp("scm") / "project"
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", f"file://{ROOT}", str(clone)], check=True)
    assert not (clone / ".collections").exists()
    return clone


def _output(runner) -> str:
    return ANSI.sub("", runner.stdout.read())


def inventory_update(tmp: Path, project: Path, update_id: int = 11) -> tuple[object, Path]:
    pdd = awx.private_data_dir(tmp / f"update-{update_id}", project)
    (pdd / "args").write_text(" ".join(["ansible-inventory", *awx.inventory_update_args(SOURCE, update_id)]))
    (pdd / "artifacts" / str(update_id)).mkdir()
    env = awx.inventory_update_env(pdd, source_id=3, update_id=update_id)
    runner = awx.run_in_ee(pdd, IMAGE, env, ident=str(update_id))
    return runner, pdd / "artifacts" / str(update_id) / "output.json"


@pytest.fixture(scope="module")
def synced(docker_client, project, tmp_path_factory) -> dict:
    runner, output = inventory_update(tmp_path_factory.mktemp("awx"), project)
    assert runner.rc == 0, f"the inventory update failed: {_output(runner)[-3000:]}"
    return json.loads(output.read_text())


def _unwrap(value):
    """A value as a job sees it: ansible-core reads AWX's stored {"__ansible_unsafe": s} back as the string s."""
    if isinstance(value, dict) and set(value) == {"__ansible_unsafe"}:
        return value["__ansible_unsafe"]
    return value


def test_an_inventory_update_from_the_project_gives_the_lab_s_media_servers(docker_client, synced):
    media = {lab.media_name(i): lab.address(docker_client, lab.media_name(i), lab.MEDIA) for i in (1, 2, 3)}
    assert set(synced["media_servers"]["hosts"]) == set(media), synced.get("media_servers")
    hostvars = synced["_meta"]["hostvars"]
    for name, address in media.items():
        stored = hostvars[name]
        # AWX stores the plugin's strings as ansible-core 2.19 exports them, and does not unwrap them.
        assert stored["rtmp_address"] == {"__ansible_unsafe": address}, stored
        got = {k: _unwrap(v) for k, v in stored.items()}
        assert got["rtmp_address"] == address and isinstance(got["rtmp_source"], str)
        assert (
            got["rtmp_port"] == 1935
            and isinstance(stored["rtmp_port"], int)
            and not isinstance(stored["rtmp_port"], bool)
        )
        assert got["rtmp_weight"] == 10 and got["rtmp_maxconn"] == 50 and got["rtmp_state"] == "ready"
        # The enabled variable: plain rtmp_state is a dict to AWX (every host disabled); the workaround works.
        assert awx.enabled(stored, "rtmp_state", "ready") is False
        assert awx.enabled(stored, "rtmp_state.__ansible_unsafe", "ready") is True


def test_the_update_fails_naming_the_plugin_when_ansible_cfg_lacks_the_ee_s_paths(docker_client, project, tmp_path):
    old = tmp_path / "old-project"
    subprocess.run(["cp", "-a", str(project), str(old)], check=True)
    config = (old / "ansible.cfg").read_text()
    (old / "ansible.cfg").write_text(
        re.sub(r"(?m)^collections_path = .*$", "collections_path = ./.collections", config)
    )
    runner, _output_file = inventory_update(tmp_path, old, update_id=12)
    text = _output(runner)
    assert runner.rc != 0, "an ansible.cfg without the EE's collection paths synced anyway"
    assert "rtmpedge.balancer.media_servers" in text, text[-2000:]


def _job_inventory(docker_client, synced: dict) -> dict:
    """The inventory AWX would hand a job: the balancers, the synced media servers as stored, and the
    inventory's variables (the lab's group_vars/all, the discovery file's content inline)."""
    variables = yaml.safe_load((ROOT / "inventories/lab/group_vars/all.yml").read_text())
    variables["reconcile_discovery_config"] = yaml.safe_load((ROOT / SOURCE).read_text())
    hostvars = dict(synced["_meta"]["hostvars"])
    hostvars.update({lb: {} for lb in lab.BALANCERS})
    return {
        "all": {"vars": variables, "children": ["balancers", "media_servers"]},
        "balancers": {"hosts": list(lab.BALANCERS)},
        "media_servers": {"hosts": synced["media_servers"]["hosts"]},
        "_meta": {"hostvars": hostvars},
    }


def run_job(tmp: Path, project: Path, inventory: dict, playbook: str, *, extravars: dict, job_id: int):
    pdd = awx.private_data_dir(tmp / f"job-{job_id}", project)
    hosts = awx.inventory_script(pdd, inventory)
    revision = subprocess.run(
        ["git", "-C", str(project), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    )
    env = awx.job_env(pdd, job_id=job_id, inventory_id=7, revision=revision.stdout.strip())
    # A job template's extra variables: the lab's hosts are containers, reached through the engine.
    # The RTMPS bundle comes as a custom credential type's injector hands it over (extra_vars): the
    # project holds no key, and the lab inventory's file lookup is never needed.
    credential = {"haproxy_rtmps_certificate": (lab.PKI_DIR / "rtmps.pem").read_text()}
    extravars = {"ansible_connection": "community.docker.docker_api", **credential, **extravars}
    # The inventory as AWX passes it: the host path of the script it wrote (runner maps it into /runner).
    runner = awx.run_in_ee(pdd, IMAGE, env, playbook=playbook, inventory=hosts, extravars=extravars)
    return runner, _output(runner)


def _recap(text: str) -> dict[str, dict[str, int]]:
    recap = {}
    for line in text.rsplit("PLAY RECAP", maxsplit=1)[-1].splitlines():
        match = re.match(r"^(\S+)\s+:\s+(.*)$", line.strip())
        if match:
            recap[match.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2))}
    return recap


def test_site_yml_as_a_job_converges_and_a_second_run_changes_nothing(docker_client, project, synced, tmp_path):
    inventory = _job_inventory(docker_client, synced)
    first, text = run_job(tmp_path, project, inventory, "site.yml", extravars={}, job_id=21)
    assert first.rc == 0, text[-4000:]
    second, text = run_job(tmp_path, project, inventory, "site.yml", extravars={}, job_id=22)
    assert second.rc == 0, text[-4000:]
    recap = _recap(text)
    assert set(lab.BALANCERS) <= set(recap), text[-3000:]
    changed = {host: counts["changed"] for host, counts in recap.items() if counts.get("changed")}
    assert not changed, f"the second run changed {changed}: {text[-4000:]}"


def test_the_drain_job_with_the_survey_s_variables_says_safe_to_terminate(docker_client, project, synced, tmp_path):
    inventory = _job_inventory(docker_client, synced)
    server = lab.media_name(3)
    survey = {"media_server": server, "drain_timeout": 120}
    try:
        runner, text = run_job(tmp_path, project, inventory, "playbooks/drain.yml", extravars=survey, job_id=31)
        assert runner.rc == 0, text[-4000:]
        assert f"{server} carries no stream on any balancer: safe to terminate" in text, text[-3000:]
        for lb in lab.BALANCERS:
            rows = lab.balancer_stats(docker_client, lb)
            assert rows[("rtmp_media", server)]["status"] == "MAINT", f"{lb} did not drain {server}"
    finally:
        # The lab keeps its three servers: back in service on both balancers.
        env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
        subprocess.run(
            [
                str(ROOT / ".venv/bin/ansible"),
                "balancers",
                "-i",
                "inventories/lab",
                "-m",
                "rtmpedge.balancer.haproxy_server",
                "-a",
                f"name={server} state=ready",
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
