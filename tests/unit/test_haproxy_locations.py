"""HAProxy's locations: the roles' own values (YAML, as Ansible needs them) equal the code's one table."""

from __future__ import annotations

from pathlib import Path

import yaml
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_settings import (
    FACT_PATH,
    LOCATIONS,
    RUNTIME_OPTIONS,
    Settings,
    argument_spec,
    doc_options,
)

ROOT = Path(__file__).resolve().parents[2]


def _yaml(path: str) -> dict:
    return yaml.safe_load((ROOT / path).read_text())


def test_the_haproxy_role_lays_a_balancer_out_as_the_code_expects():
    defaults, variables = _yaml("roles/haproxy/defaults/main.yml"), _yaml("roles/haproxy/vars/main.yml")
    role = {
        "admin_socket": defaults["haproxy_admin_socket"],
        "server_state_file": defaults["haproxy_server_state_file"],
        "config_path": variables["_haproxy_config_path"],
        "last_good_path": variables["_haproxy_last_good_path"],
        "master_socket": variables["_haproxy_master_socket"],
        "backend": variables["_haproxy_backend"],
        "lock_path": variables["_haproxy_lock_path"],
        "drained_file": variables["_haproxy_drained_file"],
    }
    assert role == {name: default for name, (default, _kind, _doc) in LOCATIONS.items()}
    assert variables["_haproxy_fact_file"] == FACT_PATH
    assert set(variables["_haproxy_locations"]) == set(LOCATIONS)


def test_the_reconcile_role_reads_the_fact_the_haproxy_role_writes():
    assert _yaml("roles/reconcile/vars/main.yml")["_reconcile_haproxy_fact"] == FACT_PATH


def test_the_reconcile_job_and_the_metrics_service_run_the_same_installed_code():
    haproxy_dir = _yaml("roles/haproxy/vars/main.yml")["_haproxy_code_dir"]
    assert _yaml("roles/reconcile/vars/main.yml")["_reconcile_lib_dir"] == haproxy_dir
    module = (ROOT / "plugins/modules/runtime_code.py").read_text()
    assert f"default: {haproxy_dir}" in module and f'"default": "{haproxy_dir}"' in module


def test_the_balancer_dns_role_reads_the_drained_flag_where_the_haproxy_role_keeps_it():
    assert _yaml("roles/balancer_dns/vars/main.yml")["_balancer_dns_drained_file"] == LOCATIONS["drained_file"][0]


def test_module_options_and_their_documentation_come_from_the_table():
    spec = argument_spec()
    assert set(spec) == set(RUNTIME_OPTIONS)
    documented = yaml.safe_load(doc_options())["options"]
    for name in RUNTIME_OPTIONS:
        assert documented[name]["default"] == spec[name]["default"] == LOCATIONS[name][0]
        assert documented[name]["type"] == spec[name]["type"]
    assert Settings().admin_socket == LOCATIONS["admin_socket"][0]


def test_settings_from_a_fact_ignore_what_they_do_not_know():
    settings = Settings.from_mapping({"admin_socket": "/x.sock", "unknown": 1, "backend": None})
    assert (settings.admin_socket, settings.backend) == ("/x.sock", "rtmp_media")
