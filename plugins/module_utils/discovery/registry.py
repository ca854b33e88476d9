# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every discovery source type: its options, what it needs installed, and where its code is.

The one list of source types. The inventory plugin checks options against it (its
documentation of the options is generated from it by scripts/plugin_docs.py), the
reconcile role installs the Debian packages named here, and the release check
compares the Python requirements with the execution environment's. Code is
imported on first use, so a static fleet never loads boto3 or the docker SDK.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass

from ansible_collections.rtmpedge.balancer.plugins.module_utils.discovery.common import DiscoveryError


@dataclass(frozen=True)
class Option:
    name: str
    type: str  # str, int, float, bool, list, dict
    description: str
    required: bool = False
    default: object = None
    choices: tuple = ()
    elements: str = ""  # a list's element type
    secret: bool = False  # never shown in errors or logs
    templated: bool = False  # the inventory plugin renders Jinja2 (lookups) in it


@dataclass(frozen=True)
class SourceType:
    name: str
    summary: str
    module: str  # under module_utils/discovery
    function: str
    options: tuple[Option, ...]
    python: tuple[str, ...] = ()  # PyPI distributions
    debian: tuple[str, ...] = ()  # the same, as Debian packages (the reconcile job on a balancer)

    def discover(self):
        """The source's discover(label, options) function, imported now."""
        module = importlib.import_module(f"{__package__}.{self.module}")
        return getattr(module, self.function)


# Options every source takes.
COMMON = (
    Option("type", "str", "The source type.", required=True),
    Option("name", "str", "How errors and C(rtmp_source) call this source (default: its type and position)."),
    Option("port", "int", "Port of the servers found, unless the source says (1935)."),
    Option("weight", "int", "Weight of the servers found, unless the source says (10, 0-256)."),
    Option("maxconn", "int", "Streams per server, unless the source says (0: no limit)."),
    Option("state", "str", "State of the servers found, unless the source says.", choices=("ready", "drain", "maint")),
    Option(
        "deadline",
        "float",
        "Seconds the whole source may take, retries included; past it the source fails (a slow trickle too).",
        default=60.0,
    ),
    Option("max_servers", "int", "More servers than this is an error (broken data, not a fleet).", default=100000),
)

_AWS = (
    Option("region", "str", "AWS region (else AWS_REGION or the profile's)."),
    Option("profile", "str", "A named profile of the shared AWS files."),
    Option("aws_access_key_id", "str", "Access key (else boto3's chain).", secret=True, templated=True),
    Option("aws_secret_access_key", "str", "Secret key.", secret=True, templated=True),
    Option("aws_session_token", "str", "Session token.", secret=True, templated=True),
    Option("assume_role_arn", "str", "A role to assume first.", templated=True),
    Option("role_session_name", "str", "Session name when assuming O(sources[].assume_role_arn).", default="rtmpedge"),
    Option("endpoint_url", "str", "Another endpoint (a local test server).", templated=True),
    Option("timeout", "float", "Seconds per connection and read.", default=10.0),
    Option("max_attempts", "int", "Attempts per AWS call (botocore retries).", default=3),
)

TYPES: dict[str, SourceType] = {
    t.name: t
    for t in (
        SourceType(
            "static",
            "Servers listed in the configuration.",
            "static",
            "discover",
            (
                Option(
                    "servers",
                    "list",
                    "Mappings with C(address) and optional C(name), C(port), C(weight), C(maxconn), C(state).",
                    elements="dict",
                ),
                Option(
                    "servers_file",
                    "str",
                    "Instead of C(servers): a JSON file with that list (or an object with a C(servers) list), for "
                    "large fleets; read as plain JSON, much faster than the same list inline.",
                ),
            ),
        ),
        SourceType(
            "dns_srv",
            "SRV records (Cloud Map, Consul) to target address and SRV port; SRV weights scaled to 1-256.",
            "dns_srv",
            "discover",
            (
                Option("record", "str", "The SRV record, for example C(_rtmp._tcp.media.example.com).", required=True),
                Option("nameserver", "str", "A name server to ask (else the system's)."),
                Option("nameserver_port", "int", "Its port.", default=53),
                Option("timeout", "float", "Seconds per DNS query.", default=5.0),
                Option(
                    "address_type", "str", "Record type of the targets' addresses.", default="A", choices=("A", "AAAA")
                ),
            ),
            python=("dnspython",),
            debian=("python3-dnspython",),
        ),
        SourceType(
            "aws_ecs",
            "RUNNING, not UNHEALTHY tasks of an ECS cluster: awsvpc private IPv4 and the container's port.",
            "aws",
            "discover_ecs",
            (
                Option("cluster", "str", "The ECS cluster.", required=True),
                Option("services", "list", "Only tasks of these services.", elements="str"),
                Option("task_families", "list", "Only tasks of these task definition families.", elements="str"),
                Option("container_name", "str", "The container whose first port mapping is the RTMP port."),
                *_AWS,
            ),
            python=("boto3",),
            debian=("python3-boto3",),
        ),
        SourceType(
            "aws_ec2",
            "Running EC2 instances with the given tags, by private IP.",
            "aws",
            "discover_ec2",
            (
                Option("tags", "dict", "Tag name to value (or list of values) the instances must have."),
                Option("port_tag", "str", "A tag holding each instance's RTMP port."),
                *_AWS,
            ),
            python=("boto3",),
            debian=("python3-boto3",),
        ),
        SourceType(
            "http_json",
            "An HTTP(S) URL answering a JSON list (or {servers: [...]}) of servers.",
            "http_json",
            "discover",
            (
                Option("url", "str", "The http:// or https:// URL.", required=True, templated=True),
                Option("headers", "dict", "Request headers.", templated=True),
                Option("bearer_token", "str", "Sent as C(Authorization: Bearer ...).", secret=True, templated=True),
                Option("timeout", "float", "Seconds per connection and read.", default=10.0),
                Option("validate_certs", "bool", "Verify the server's TLS certificate.", default=True),
                Option("ca_path", "str", "CA bundle to verify it with."),
                Option("max_bytes", "int", "Largest answer read; a longer one is an error.", default=16 * 1024 * 1024),
            ),
        ),
        SourceType(
            "docker",
            "Running containers with a label, by their address on a network.",
            "docker_source",
            "discover",
            (
                Option("label", "str", "The label to select, for example C(rtmpedge.role=media).", required=True),
                Option("network", "str", "The network whose address HAProxy connects to.", required=True),
                Option("docker_host", "str", "The engine's URL (else DOCKER_HOST or the local socket)."),
                Option("port_label", "str", "A label holding each container's RTMP port."),
                Option("timeout", "float", "Seconds per engine call.", default=10.0),
            ),
            python=("docker",),
            debian=("python3-docker",),
        ),
    )
}


def options_of(kind: str) -> dict[str, Option]:
    return {o.name: o for o in (*COMMON, *TYPES[kind].options)}


def _as_bool(option: Option, value: object) -> bool:
    if isinstance(value, bool):
        return value
    words = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
    if str(value).lower() not in words:
        raise ValueError("must be true or false")
    return words[str(value).lower()]


def _as_number(option: Option, value: object) -> float:
    if isinstance(value, bool):
        raise ValueError(f"must be a number, not {value!r}")
    try:
        number = float(str(value)) if option.type == "float" else int(str(value).strip())
    except ValueError:
        raise ValueError(f"must be {'a number' if option.type == 'float' else 'an integer'}") from None
    if not 0 <= number < float("inf"):  # NaN fails this too
        raise ValueError("must be a positive number")
    return number


def _as_str(option: Option, value: object) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError(f"must be a string, not a {type(value).__name__}")
    return str(value)


def _as_list(option: Option, value: object) -> list:
    if not isinstance(value, list):
        raise ValueError(f"must be a list, not a {type(value).__name__}")
    if option.elements == "dict" and not all(isinstance(v, dict) for v in value):
        raise ValueError("must be a list of mappings")
    if option.elements == "str":
        if any(isinstance(v, (dict, list)) for v in value):
            raise ValueError("must be a list of strings")
        return [str(v) for v in value]
    return value


def _as_dict(option: Option, value: object) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"must be a mapping, not a {type(value).__name__}")
    return value


# The value as the option's type, or ValueError saying what it must be.
_COERCE = {"bool": _as_bool, "int": _as_number, "float": _as_number, "str": _as_str, "list": _as_list, "dict": _as_dict}


def check_options(label: str, options: object) -> dict:
    """The source's options checked and completed with defaults; DiscoveryError naming the key otherwise."""
    if not isinstance(options, dict):
        raise DiscoveryError(label, f"must be a mapping with a 'type', got {type(options).__name__}")
    kind = options.get("type")
    if kind not in TYPES:
        raise DiscoveryError(label, f"unknown type {kind!r}; one of {', '.join(TYPES)}")
    known = options_of(kind)
    checked = {}
    for key, value in options.items():
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; {kind} takes {', '.join(sorted(known))}"
            raise DiscoveryError(label, f"unknown option {key!r} for type {kind}{hint}")
        if value is None:
            continue
        try:
            checked[key] = _COERCE[known[key].type](known[key], value)
        except ValueError as e:
            shown = "(secret)" if known[key].secret else repr(value)[:80]
            raise DiscoveryError(label, f"option {key!r} {e}, got {shown}") from None
        if known[key].choices and checked[key] not in known[key].choices:
            raise DiscoveryError(label, f"option {key!r} must be one of {', '.join(known[key].choices)}, got {value!r}")
    for option in known.values():
        if option.required and option.name not in checked:
            raise DiscoveryError(label, f"option {option.name!r} is required for type {kind}")
        if option.name not in checked and option.default is not None:
            checked[option.name] = option.default
    return checked


def unrendered(label: str, options: dict) -> None:
    """Refuse template text left in an option: it would go out as a literal credential or URL."""
    for option in options_of(options["type"]).values():
        value = options.get(option.name)
        texts = list(value.values()) if isinstance(value, dict) else [value]
        if option.templated and any(isinstance(t, str) and ("{{" in t or "{%" in t) for t in texts):
            raise DiscoveryError(
                label,
                f"option {option.name!r} still holds template text: it is rendered by the inventory plugin "
                "(or by the role writing this file), never sent as it is",
            )


def python_requirements(types: list[str]) -> list[str]:
    return sorted({p for t in types for p in TYPES[t].python})


def debian_packages(types: list[str]) -> list[str]:
    return sorted({p for t in types if t in TYPES for p in TYPES[t].debian})
