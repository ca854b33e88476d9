"""Commands in the project's containers (lab, molecule), through the docker CLI."""

from __future__ import annotations

import subprocess

# What systemd needs as PID 1 without --privileged (docs/development.md), as docker SDK options:
# the lab's containers and the cloud lab's machines (harness/cloud.py).
SYSTEMD = {
    "command": "/lib/systemd/systemd",
    "stop_signal": "SIGRTMIN+3",
    "cap_add": ["SYS_ADMIN", "NET_ADMIN", "NET_RAW"],
    "security_opt": ["seccomp=unconfined"],
    "tmpfs": {"/run": "", "/run/lock": "", "/tmp": ""},
    "volumes": {"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "ro"}},
    "environment": {"container": "docker"},
}


def dexec(
    container: str, command: str, check: bool = True, input_text: str | None = None
) -> subprocess.CompletedProcess:
    """`sh -c command` in the container; with check, a non-zero exit raises naming the container."""
    flags = ["-i"] if input_text is not None else []
    result = subprocess.run(
        ["docker", "exec", *flags, container, "sh", "-c", command],
        capture_output=True,
        text=True,
        input=input_text,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"{container}: {command!r} exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    return result


_ADMIN_CLIENT = """
import socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
sock.sendall(sys.argv[2].encode() + b"\\n")
out = b""
while data := sock.recv(65536):
    out += data
sys.stdout.write(out.decode())
"""


def admin_command(container: str, command: str, socket_path: str = "/run/haproxy/admin.sock") -> str:
    """A runtime API command on a balancer container (python3 is there for Ansible; socat may not be)."""
    return dexec(container, f"python3 - {socket_path} '{command}'", input_text=_ADMIN_CLIENT).stdout
