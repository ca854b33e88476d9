# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: media_servers
short_description: Discover RTMP media servers (static, DNS SRV, AWS ECS, AWS EC2, HTTP JSON, Docker)
version_added: 0.1.0
description:
  - Finds the media servers behind the RTMP balancers and puts each one in a group (C(media_servers) by
    default) with the variables the C(rtmpedge.balancer.haproxy) role reads - C(rtmp_address), C(rtmp_port),
    C(rtmp_weight), C(rtmp_maxconn), C(rtmp_state) - plus C(rtmp_source) and what the source knows
    (C(rtmp_task_arn), C(rtmp_instance_id), C(rtmp_container_id), C(rtmp_availability_zone), C(rtmp_srv_target)).
  - Several sources can be combined. Sources are read in order; when two report the same address and port,
    the first one keeps it and a warning names the duplicate.
  - A source that fails, times out, returns malformed data or no servers at all is an error naming the source
    and the cause. The fleet is never silently empty or partial (see O(allow_empty) and O(on_source_error)).
  - Host names are stable, derived from each source's own ids (task id, instance id, container name, SRV
    target, or the C(name)/C(id) given), never from list positions.
  - Configuration files must end in C(media_servers.yml) or C(media_servers.yaml).
author:
  - rtmpedge maintainers (@rtmpedge)
requirements:
  - dnspython (source C(dns_srv))
  - boto3 and botocore (sources C(aws_ecs), C(aws_ec2))
  - docker (source C(docker))
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: Marks this file as a configuration of this plugin.
    required: true
    type: str
    choices: [rtmpedge.balancer.media_servers]
  group:
    description: The group every discovered media server joins.
    type: str
    default: media_servers
  allow_empty:
    description: Accept a source, or all of them, finding no media server at all (normally an error).
    type: bool
    default: false
  on_source_error:
    description:
      - What a failing source does. C(fail) stops with its error. C(skip) leaves its servers out with a
        warning; use it only when the other sources are enough on their own.
    type: str
    default: fail
    choices: [fail, skip]
  sources:
    description:
      - The sources, each a mapping with C(type) and that type's options. Every type also takes C(name)
        (how errors and C(rtmp_source) call it) and defaults for the servers it finds - C(port) (1935),
        C(weight) (10), C(maxconn) (0, no limit), C(state) (C(ready)).
      - "C(static): C(servers), a list of C(address) with optional C(name), C(port), C(weight), C(maxconn),
        C(state)."
      - "C(dns_srv): C(record), the SRV record (for example C(_rtmp._tcp.media.example.com)); optional
        C(nameserver), C(nameserver_port) (53), C(timeout) (5). SRV weights become C(rtmp_weight), scaled to
        1-256 when larger."
      - "C(aws_ecs): C(cluster); optional C(services) or C(task_families), C(container_name), C(port) (else the
        container's first port mapping). RUNNING tasks only, UNHEALTHY ones left out, address of the awsvpc ENI.
        Credentials: C(region), C(profile), C(aws_access_key_id), C(aws_secret_access_key),
        C(aws_session_token), C(assume_role_arn), C(endpoint_url); otherwise boto3's own chain (AWS_* environment
        variables, shared files, instance role)."
      - "C(aws_ec2): C(tags) (tag name to value or list of values); running instances, private IP; port from
        the tag named by C(port_tag), else C(port). Same credential options as C(aws_ecs)."
      - "C(http_json): C(url); optional C(headers), C(bearer_token), C(timeout) (10), C(validate_certs) (true),
        C(ca_path). The answer is a JSON list, or an object with a C(servers) list, of objects with C(address)
        and optional C(id) (host name), C(port), C(weight), C(maxconn), C(state)."
      - "C(docker): C(label) (for example C(rtmpedge.role=media)) and C(network); running containers only,
        named after the container; optional C(docker_host), C(port_label); labels C(rtmpedge.weight) and
        C(rtmpedge.maxconn) set weight and maxconn."
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
# fleet.media_servers.yml - a static list
plugin: rtmpedge.balancer.media_servers
sources:
  - type: static
    servers:
      - {name: media1, address: 10.0.1.11, maxconn: 200}
      - {name: media2, address: 10.0.1.12, weight: 20}
---
# dns.media_servers.yml - SRV records from Cloud Map or Consul
plugin: rtmpedge.balancer.media_servers
sources:
  - type: dns_srv
    name: cloudmap
    record: _rtmp._tcp.media.internal
    nameserver: 10.0.0.2
---
# ecs.media_servers.yml - Fargate tasks of two services, grouped by availability zone, cached 60 s
plugin: rtmpedge.balancer.media_servers
sources:
  - type: aws_ecs
    region: eu-west-1
    cluster: live
    services: [ingest-a, ingest-b]
    container_name: nginx-rtmp
    maxconn: 1
keyed_groups:
  - key: rtmp_availability_zone
    prefix: az
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: /var/cache/rtmpedge/inventory
cache_timeout: 60
---
# api.media_servers.yml - an HTTP API, and a static box, combined
plugin: rtmpedge.balancer.media_servers
sources:
  - type: http_json
    name: fleet-api
    url: https://fleet.example.com/v1/media-servers
    bearer_token: "{{ lookup('ansible.builtin.env', 'FLEET_TOKEN') }}"
  - type: static
    servers:
      - {name: big-box, address: 10.0.9.1, maxconn: 200}
"""

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.unsafe_proxy import wrap_var
from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.common import DiscoveryError, MediaServer
from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.sources import discover_all

SUFFIXES = ("media_servers.yml", "media_servers.yaml")


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "rtmpedge.balancer.media_servers"

    def verify_file(self, path):
        return super().verify_file(path) and str(path).endswith(SUFFIXES)

    def _discover(self) -> list[dict]:
        sources = self.get_option("sources")
        try:
            servers, warnings = discover_all(
                sources, self.get_option("allow_empty"), self.get_option("on_source_error")
            )
        except DiscoveryError as e:
            raise AnsibleError(str(e)) from e
        for warning in warnings:
            self.display.warning(warning)
        return [s.as_dict() for s in servers]

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        update_cache = self.get_option("cache") and not cache
        servers = None
        if use_cache:
            try:
                servers = self._cache[cache_key]
            except KeyError:
                update_cache = True
        if servers is None:
            servers = self._discover()
        if update_cache:
            self._cache[cache_key] = servers
        self._populate([MediaServer.from_dict(s) for s in servers])

    def _populate(self, servers: list[MediaServer]) -> None:
        group = self.inventory.add_group(self.get_option("group"))
        strict = self.get_option("strict")
        for server in servers:
            host = self.inventory.add_host(server.name, group=group)
            host_vars = {k: wrap_var(v) for k, v in server.host_vars().items()}
            host_vars["ansible_host"] = wrap_var(server.address)
            for key, value in host_vars.items():
                self.inventory.set_variable(host, key, value)
            try:
                self._set_composite_vars(self.get_option("compose"), host_vars, host, strict=strict)
                self._add_host_to_composed_groups(self.get_option("groups"), host_vars, host, strict=strict)
                self._add_host_to_keyed_groups(self.get_option("keyed_groups"), host_vars, host, strict=strict)
            except AnsibleError as e:
                raise AnsibleParserError(f"media server {server.name}: {e}") from e
