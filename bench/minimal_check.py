"""The floor the reconcile job's no-change run is held against: the least a correct check does.

Load the discovery data (a JSON list of servers), read the backend with one
`show servers state`, compare names, addresses, ports and weights. Exit 0 when they
match, 1 (saying what differs) when not: the bench counts a run only when it agrees.

    python3 minimal_check.py SERVERS_JSON ADMIN_SOCKET [BACKEND]
"""

from __future__ import annotations

import json
import socket
import sys


def show_servers_state(path: str, backend: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(f"show servers state {backend}\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def main() -> int:
    servers_json, admin_socket = sys.argv[1:3]
    backend = sys.argv[3] if len(sys.argv) > 3 else "rtmp_media"
    with open(servers_json, "rb") as handle:
        wanted = {s["name"]: (s["address"], s.get("port", 1935), s.get("weight", 10)) for s in json.load(handle)}
    running = {}
    for line in show_servers_state(admin_socket, backend).splitlines()[2:]:
        f = line.split()
        if len(f) > 18:  # srv_name 3, srv_addr 4, srv_uweight 7, srv_port 18
            running[f[3]] = (f[4], int(f[18]), int(f[7]))
    if running != wanted:
        differ = sorted(set(running.items()) ^ set(wanted.items()))[:5]
        sys.stderr.write(f"differs: {differ}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
