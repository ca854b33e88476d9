# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where HAProxy keeps things on a balancer: declared once, for the modules, the job and the docs.

The haproxy role lays a balancer out this way (its defaults say the same, and a unit
test holds them equal) and publishes the actual values as the local fact
`rtmpedge_haproxy`, which the reconcile job reads, so a balancer whose sockets moved
is still found. The modules share one argument spec and one doc fragment
(rtmpedge.balancer.haproxy_runtime), both made from the table below. Pure Python.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields

# name: (default, argument type, description)
LOCATIONS = {
    "admin_socket": ("/run/haproxy/admin.sock", "path", "HAProxy's runtime API socket (admin level)."),
    "master_socket": (
        "/run/haproxy/master.sock",
        "path",
        "The master CLI socket: reloads, and sessions counted in every worker, old ones included.",
    ),
    "backend": ("rtmp_media", "str", "The backend of the media servers."),
    "config_path": ("/etc/haproxy/haproxy.cfg", "path", "HAProxy's configuration file."),
    "last_good_path": (
        "/etc/haproxy/haproxy.cfg.last-good",
        "path",
        "The last configuration HAProxy accepted, kept to compare and to restore.",
    ),
    "server_state_file": (
        "/var/lib/haproxy/server-state",
        "path",
        "Where the servers' runtime state (drain, maintenance, weights) is saved across reloads.",
    ),
    "drained_file": (
        "/etc/haproxy/balancer-drained.acl",
        "path",
        "Holds the word 'drained' while the balancer is drained on purpose (its health endpoint answers 503).",
    ),
    "lock_path": (
        "/run/rtmpedge-reconcile.lock",
        "path",
        "The lock that one apply at a time holds (the role's handler, the reconcile job, playbooks).",
    ),
}
LOCK_WAIT = 60  # seconds; the reconcile role waits less, so a cron run gives up before the next starts
FACT_PATH = "/etc/ansible/facts.d/rtmpedge_haproxy.fact"
# The modules' shared options (doc fragment rtmpedge.balancer.haproxy_runtime).
RUNTIME_OPTIONS = ("admin_socket", "master_socket", "backend")


def _default(name: str) -> str:
    return LOCATIONS[name][0]


@dataclass
class Settings:
    """A balancer's HAProxy locations plus how an apply behaves."""

    config_path: str = _default("config_path")
    last_good_path: str = _default("last_good_path")
    backend: str = _default("backend")
    admin_socket: str = _default("admin_socket")
    master_socket: str = _default("master_socket")
    server_state_file: str = _default("server_state_file")
    service: str = "haproxy"
    haproxy: str = "/usr/sbin/haproxy"
    lock_path: str = _default("lock_path")
    lock_wait: float = LOCK_WAIT
    reload_timeout: float = 30.0
    allow_empty: bool = False
    max_shrink: float = 0.5  # largest fraction of the servers one change may remove
    config_group: str = "haproxy"
    reload_command: list = field(default_factory=list)  # empty: systemctl reload <service>

    @classmethod
    def from_mapping(cls, data: dict) -> Settings:
        """Settings from a mapping (the local fact, module parameters); unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known and v is not None})


def argument_spec(*names: str) -> dict:
    """The modules' argument spec for these locations (all of RUNTIME_OPTIONS when none are named)."""
    return {n: {"type": LOCATIONS[n][1], "default": _default(n)} for n in names or RUNTIME_OPTIONS}


def doc_options(*names: str) -> str:
    """The same options as module documentation (YAML), for the doc fragment."""
    lines = ["options:"]
    for name in names or RUNTIME_OPTIONS:
        default, kind, description = LOCATIONS[name]
        lines += [f"  {name}:", f"    description: {json.dumps(description)}", f"    type: {kind}"]
        lines.append(f"    default: {default}")
    return "\n".join(lines) + "\n"


def read_fact(path: str = FACT_PATH) -> Settings:
    """The locations the haproxy role published on this balancer; OSError/ValueError when unusable."""
    with open(path) as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a JSON object")
    return Settings.from_mapping(data)
