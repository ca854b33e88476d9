"""Filter rtmp_source_packages: the reconcile role's packages and option check, from the registry."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.rtmpedge.balancer.plugins.filter.rtmp_sources import rtmp_source_packages


def test_packages_follow_the_source_types_in_use():
    assert rtmp_source_packages([{"type": "static", "servers": []}]) == []
    sources = [{"type": "aws_ecs", "cluster": "c"}, {"type": "aws_ec2"}, {"type": "dns_srv", "record": "_r._tcp.x"}]
    assert rtmp_source_packages(sources) == ["python3-boto3", "python3-dnspython"]


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ([{"type": "aws_ecs", "cluster": "c", "services_": ["x"]}], "unknown option 'services_' for type aws_ecs"),
        ([{"type": "consul"}], "unknown type 'consul'"),
        ([{"type": "http_json"}], "option 'url' is required for type http_json"),
        ("static", "expects the list of sources, got str"),
    ],
)
def test_a_mistake_fails_when_the_job_is_installed(sources, message):
    with pytest.raises(AnsibleFilterError, match=message):
        rtmp_source_packages(sources)
