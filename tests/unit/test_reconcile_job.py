"""module_utils.reconcile: what the job reads before it discovers anything."""

from __future__ import annotations

import json

import pytest
from ansible_collections.rtmpedge.balancer.plugins.module_utils.reconcile import JobError, read_discovery_config

CONFIG = {"plugin": "rtmpedge.balancer.media_servers", "sources": [{"type": "static", "servers": []}]}


def test_the_roles_json_and_a_hand_written_yaml_file_read_the_same(tmp_path):
    as_json, as_yaml = tmp_path / "a.media_servers.yml", tmp_path / "b.media_servers.yml"
    as_json.write_text(json.dumps(CONFIG))
    as_yaml.write_text("plugin: rtmpedge.balancer.media_servers\nsources:\n  - type: static\n    servers: []\n")
    assert read_discovery_config(str(as_json)) == read_discovery_config(str(as_yaml)) == CONFIG


@pytest.mark.parametrize(("content", "message"), [(None, "No such file"), ("sources: [unclosed", "cannot read")])
def test_an_unreadable_file_is_a_job_error_naming_it(tmp_path, content, message):
    path = tmp_path / "d.media_servers.yml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(JobError, match=message) as caught:
        read_discovery_config(str(path))
    assert str(path) in str(caught.value)
