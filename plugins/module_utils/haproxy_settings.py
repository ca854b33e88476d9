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


# Beside the locations, how an apply behaves: name -> default.
_BEHAVIOUR = {
    "service": "haproxy",
    "haproxy": "/usr/sbin/haproxy",
    "lock_wait": LOCK_WAIT,
    "reload_timeout": 30.0,
    "allow_empty": False,
    "max_shrink": 0.5,  # largest fraction of the servers one change may remove
    "config_group": "haproxy",
    "reload_command": [],  # empty: systemctl reload <service>
}
_FIELDS = {**{name: _default(name) for name in LOCATIONS}, **_BEHAVIOUR}


class Settings:
    """A balancer's HAProxy locations plus how an apply behaves.

    A plain class rather than a dataclass: importing dataclasses alone would cost the
    reconcile job's run with nothing to do a sixth of its time.
    """

    __slots__ = tuple(_FIELDS)

    def __init__(self, **values):
        unknown = sorted(set(values) - set(_FIELDS))
        if unknown:
            raise TypeError(f"Settings has no field {', '.join(unknown)}")
        for name, default in _FIELDS.items():
            value = values.get(name, default)
            setattr(self, name, list(value) if isinstance(value, list) else value)

    def __repr__(self) -> str:
        return "Settings(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in _FIELDS) + ")"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Settings):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _FIELDS)

    __hash__ = None  # mutable, like the dataclass it replaces

    @classmethod
    def from_mapping(cls, data: dict) -> Settings:
        """Settings from a mapping (the local fact, module parameters); unknown keys are ignored."""
        return cls(**{k: v for k, v in data.items() if k in _FIELDS and v is not None})


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
