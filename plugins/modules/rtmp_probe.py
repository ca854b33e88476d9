#!/usr/bin/python
# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module: an RTMP handshake with a balancer or media server, as a publisher starts one."""

from __future__ import annotations

DOCUMENTATION = r"""
module: rtmp_probe
short_description: Start an RTMP handshake as a publisher would, and check that a media server answers
version_added: 0.2.0
description:
  - Connects to O(host):O(port), sends the RTMP C0 and C1 (1537 bytes, what a publisher sends first) and waits
    for S0 (version 3) and S1 from the server. Through a balancer this passes its protocol check and reaches a
    media server, so it proves the whole path a publisher takes, without publishing media.
  - Closes the connection after S1; the media server sees a client that went away during the handshake.
  - "Run it from where publishers are (for example C(delegate_to: localhost)). In transparent mode a probe from the
    balancer itself would reach the media server with the balancer's own address as the client's."
author:
  - rtmpedge maintainers (@rtmpedge)
options:
  host:
    description: Address or name of the balancer or media server.
    type: str
    required: true
  port:
    description: RTMP port.
    type: int
    default: 1935
  timeout:
    description: Seconds for the connection and for each answer.
    type: float
    default: 10
attributes:
  check_mode:
    description: Probes in check mode too; nothing changes either way.
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
"""

EXAMPLES = r"""
- name: A publisher's handshake through this balancer reaches a media server
  rtmpedge.balancer.rtmp_probe:
    host: "{{ balancer_dns_ipv4 | default(ansible_host) }}"
    port: 1935
  delegate_to: localhost
"""

RETURN = r"""
seconds:
  description: Time from connecting to the complete S0 and S1.
  returned: success
  type: float
  sample: 0.004
"""

import os
import socket
import struct
import time

from ansible.module_utils.basic import AnsibleModule

RTMP_VERSION = 3
HANDSHAKE_BYTES = 1536  # C1 and S1: time, zero, 1528 random bytes


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def handshake(host: str, port: int, timeout: float) -> float:
    """Seconds until S0 and S1 arrived; OSError or ValueError saying what went wrong."""
    c1 = struct.pack(">II", int(time.time()) & 0xFFFFFFFF, 0) + os.urandom(HANDSHAKE_BYTES - 8)
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(bytes([RTMP_VERSION]) + c1)
        answer = _read_exactly(sock, 1 + HANDSHAKE_BYTES)
    if not answer:
        raise ValueError("the connection was closed before any answer (refused by the balancer, or no media server)")
    if answer[0] != RTMP_VERSION:
        raise ValueError(f"the answer is not RTMP: first byte {answer[0]:#04x}, expected S0 {RTMP_VERSION:#04x}")
    if len(answer) < 1 + HANDSHAKE_BYTES:
        raise ValueError(f"S1 ended after {len(answer) - 1} of {HANDSHAKE_BYTES} bytes")
    return time.monotonic() - started


def main():
    module = AnsibleModule(
        argument_spec={
            "host": {"type": "str", "required": True},
            "port": {"type": "int", "default": 1935},
            "timeout": {"type": "float", "default": 10.0},
        },
        supports_check_mode=True,
    )
    p = module.params
    where = f"{p['host']}:{p['port']}"
    try:
        seconds = handshake(p["host"], p["port"], p["timeout"])
    except (OSError, ValueError) as e:
        module.fail_json(msg=f"RTMP handshake with {where} failed: {e}")
    module.exit_json(changed=False, seconds=round(seconds, 4))


if __name__ == "__main__":
    main()
