"""Render roles/haproxy/templates/haproxy.cfg.j2 in-process the way the role does.

Role defaults, role vars and the facts the preflight derives are combined, then
the template goes through Ansible's own Templar, so filters and tests behave as
in a play.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ansible_collections.rtmpedge.balancer.plugins.filter.rtmp_backend import rtmp_backend_config
from role_render import render_template, role_variables


def render(media_servers: dict[str, dict], **overrides) -> str:
    """The haproxy.cfg for these media servers (host -> host vars) and role variables.

    debian="13" renders for Debian 13 (HAProxy 3.0); the default is Debian 12.
    """
    debian = overrides.pop("debian", "12")
    variables = role_variables("haproxy", **overrides)
    backend = rtmp_backend_config(list(media_servers), media_servers)
    assert not backend["problems"], backend["problems"]
    frontend = variables["haproxy_frontend_maxconn"] or backend["derived_maxconn"]
    # The balancer's own name and the inventory's groups (peers read them).
    variables.setdefault("inventory_hostname", "balancer1")
    variables.setdefault("groups", {})
    variables.update(
        ansible_facts={"ansible_local": {}, "distribution_major_version": debian},
        _haproxy_backend_config=backend,
        _haproxy_frontend_maxconn=frontend,
        _haproxy_global_maxconn=variables["haproxy_global_maxconn"] or frontend + 512,
    )
    return render_template("haproxy", "haproxy.cfg.j2", variables)


def haproxy_check(haproxy_bin: str, config: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """`haproxy -c` on a rendered configuration, as the role's validate step runs it."""
    path = tmp_path / "haproxy.cfg"
    path.write_text(with_local_lists(config, tmp_path), encoding="utf-8")
    return subprocess.run([haproxy_bin, "-c", "-f", str(path)], capture_output=True, text=True, check=False)


def with_local_lists(config: str, where: Path) -> str:
    """The config reading its publisher lists, drained flag and ACME map from `where`, with empty files there.

    The role writes them in /etc/haproxy before it validates; tests write theirs here.
    """
    for name in ("publishers-allow.acl", "publishers-deny.acl", "balancer-drained.acl", "acme-challenges.map"):
        (where / name).touch()
        config = config.replace(f"/etc/haproxy/{name}", str(where / name))
    return config
