"""The haproxy role's backend filter in a real play: media servers with facts and without.

The filter reads hosts without facts with fact injection off (ansible-core otherwise cleans
their empty facts, globbing every connection plugin, per host); a host with facts is read as
ever, so a contract variable that templates an injected fact keeps its value.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]

# An earlier run leaves media1's facts in a persistent fact cache: the play below (another
# process) gets them only from there, injected as top-level variables; rtmp_weight is the
# contract's own variable, set nowhere else.
EARLIER_RUN = """
- name: Leave facts for media1 in the fact cache
  hosts: media1
  gather_facts: false
  tasks:
    - name: Cache them
      ansible.builtin.set_fact:
        ansible_lab_address: 10.40.0.7
        rtmp_weight: 30
        cacheable: true
"""

PLAY = """
- name: Build the backend
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Build it as the role does
      ansible.builtin.set_fact:
        _backend: "{{ groups['media_servers'] | rtmpedge.balancer.rtmp_backend_config(hostvars) }}"

    - name: Show it
      ansible.builtin.debug:
        msg: "LINES={{ _backend['lines'] }} PROBLEMS={{ _backend['problems'] }}"
"""


def test_hosts_with_cached_facts_and_hosts_without_both_read_as_ansible_reads_them(tmp_path):
    cache = tmp_path / "facts"
    inventory = {
        "all": {"hosts": {"localhost": {"ansible_connection": "local"}}},
        "media_servers": {
            "hosts": {
                "media1": {"ansible_connection": "local", "rtmp_address": "{{ ansible_lab_address }}"},
                "media2": {"rtmp_address": "10.40.0.8", "rtmp_weight": 20},
                "media3": {"ansible_host": "10.40.0.9", "rtmp_port": "{{ 1900 + 36 }}"},
            }
        },
    }
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "earlier.yml").write_text(EARLIER_RUN)
    (tmp_path / "play.yml").write_text(PLAY)
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    env |= {"ANSIBLE_CACHE_PLUGIN": "ansible.builtin.jsonfile", "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(cache)}

    def play(name: str) -> subprocess.CompletedProcess:
        argv = [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(tmp_path / "inventory.yml"), str(tmp_path / name)]
        return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)

    earlier = play("earlier.yml")
    assert earlier.returncode == 0 and list(cache.iterdir()), earlier.stdout + earlier.stderr
    result = play("play.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "server media1 10.40.0.7:1935 weight 30" in result.stdout, result.stdout
    assert "server media2 10.40.0.8:1935 weight 20" in result.stdout, result.stdout
    assert "server media3 10.40.0.9:1936 weight 10" in result.stdout, result.stdout
    assert "PROBLEMS=[]" in result.stdout, result.stdout
