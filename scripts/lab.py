"""The local lab: two balancers, nginx-rtmp media servers and an ffmpeg client on docker.

  lab.py up          networks, containers, site.yml (transparent mode, reconcile job), test streams
  lab.py scale N     N media servers in all; the balancers' reconcile job adds them at runtime
  lab.py status      each balancer's view of the fleet: state, sessions, weight
  lab.py down        remove every container and network of the lab

Names follow the lab contract in docs/lab.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import docker
import docker.errors

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from harness import nginx_stat  # noqa: E402 - the harness's stat-page reader

PUBLIC, MEDIA = "rtmpedge-public", "rtmpedge-media"
BALANCERS = {"rtmpedge-lb1": "rtmpedge/debian-systemd:bookworm", "rtmpedge-lb2": "rtmpedge/debian-systemd:trixie"}
CLIENT = "rtmpedge-client"
PROMETHEUS = "rtmpedge-prometheus"
MEDIA_IMAGE = "rtmpedge/media-nginx-rtmp:bookworm"
CLIENT_IMAGE = "rtmpedge/publisher-ffmpeg:bookworm"
PROMETHEUS_IMAGE = "rtmpedge/prometheus:bookworm"
LAB_LABEL = "rtmpedge.lab"
MEDIA_LABEL = "rtmpedge.role"
# The test publisher (streams until stopped, then says whether it was cut), copied into the client.
PUBLISHER = ROOT / "tests" / "harness" / "publisher.py"
PUBLISHER_IN_CLIENT = "/usr/local/bin/rtmpedge-test-publisher"
STATS_AUTH = ("lab", "lab")  # haproxy_management_user/password in inventories/lab/group_vars/all.yml
# What systemd needs as PID 1 without --privileged (docs/development.md).
SYSTEMD = {
    "command": "/lib/systemd/systemd",
    "stop_signal": "SIGRTMIN+3",
    "cap_add": ["SYS_ADMIN", "NET_ADMIN", "NET_RAW"],
    "security_opt": ["seccomp=unconfined"],
    "tmpfs": {"/run": "", "/run/lock": "", "/tmp": ""},  # noqa: S108 - tmpfs mounts inside the container
    "volumes": {"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "ro"}},
    "environment": {"container": "docker"},
}


def say(message: str) -> None:
    print(f"lab: {message}", flush=True)


def run(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, cwd=ROOT, **kwargs)


def media_name(index: int) -> str:
    return f"rtmpedge-media{index}"


def ensure_network(client, name: str, masquerade: bool):
    try:
        return client.networks.get(name)
    except docker.errors.NotFound:
        say(
            f"creating network {name}"
            + ("" if masquerade else " (no IP masquerade: transparent SYNs keep their source)")
        )
        options = {} if masquerade else {"com.docker.network.bridge.enable_ip_masquerade": "false"}
        return client.networks.create(name, driver="bridge", options=options, labels={LAB_LABEL: "1"})


def ensure_container(client, name: str, image: str, networks: list[str], **extra):
    """Start the container, creating it on its networks first; an existing one is kept."""
    try:
        container = client.containers.get(name)
        if container.status != "running":
            say(f"starting {name}")
            container.start()
        return container
    except docker.errors.NotFound:
        pass
    say(f"creating {name} ({image})")
    labels = {LAB_LABEL: "1", **extra.pop("labels", {})}
    options = {**SYSTEMD, **extra, "volumes": {**SYSTEMD["volumes"], **extra.get("volumes", {})}}
    container = client.containers.create(
        image, name=name, hostname=name, network=networks[0], labels=labels, detach=True, **options
    )
    for network in networks[1:]:
        client.networks.get(network).connect(container)
    container.start()
    return container


def address(client, name: str, network: str) -> str:
    container = client.containers.get(name)
    return container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def media_containers(client) -> list:
    found = client.containers.list(all=True, filters={"label": [f"{LAB_LABEL}=1", f"{MEDIA_LABEL}=media"]})
    return sorted(found, key=lambda c: int(c.name.removeprefix("rtmpedge-media")))


def create_media(client, count: int) -> list[str]:
    names = []
    for index in range(1, count + 1):
        ensure_container(client, media_name(index), MEDIA_IMAGE, [MEDIA], labels={MEDIA_LABEL: "media"})
        names.append(media_name(index))
    return names


def wait_for_stat(client, names: list[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    for name in names:
        url = f"http://{address(client, name, MEDIA)}:8080/stat"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit(f"lab: {name} does not answer on {url}")
                time.sleep(0.5)


def monitoring_enabled() -> bool:
    """The lab's Prometheus (docs/monitoring.md) runs unless LAB_MONITORING=0."""
    return os.environ.get("LAB_MONITORING", "1") not in ("0", "no", "false")


def ansible_playbook(*args: str) -> None:
    """Every playbook run of the lab; RTMPEDGE_LAB_VARS names an extra-vars file to add (make bench)."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false"}
    extra = ["-e", "@" + os.environ["RTMPEDGE_LAB_VARS"]] if os.environ.get("RTMPEDGE_LAB_VARS") else []
    if not monitoring_enabled() and "--limit" not in args:
        extra += ["--limit", "all:!monitoring"]
    run(str(ROOT / ".venv/bin/ansible-playbook"), "-i", "inventories/lab", *extra, *args, env=env)


def streams(client) -> dict[str, tuple[str, str]]:
    """Live streams on the media servers' stat pages: {stream: (server, publisher address)}."""
    seen = {}
    for container in media_containers(client):
        if container.status != "running":
            continue
        page = nginx_stat.stat_page(f"http://{address(client, container.name, MEDIA)}:8080/stat")
        for stream, publisher in nginx_stat.publishers_in(page).items():
            if publisher is not None:
                seen[stream] = (container.name, publisher)
    return seen


def http_get(client, lb: str, port: int, path: str, timeout: float = 5) -> tuple[int, str]:
    """A balancer's management (8404, with the lab's password) or health (8000) endpoint: (status, body)."""
    url = f"http://{address(client, lb, MEDIA)}:{port}{path}"
    manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    manager.add_password(None, url, *STATS_AUTH)
    opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(manager))
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def prometheus_api(client, path: str, **parameters) -> dict:
    """The lab Prometheus' HTTP API (api/v1/<path>): the answer's data."""
    url = f"http://{address(client, PROMETHEUS, MEDIA)}:9090/api/v1/{path}?" + urllib.parse.urlencode(parameters)
    with urllib.request.urlopen(url, timeout=30) as response:
        body = json.loads(response.read())
    if body.get("status") != "success":
        raise RuntimeError(f"Prometheus answered {path}: {body}")
    return body["data"]


def balancer_stats(client, lb: str) -> dict[tuple[str, str], dict]:
    """The stats CSV of the worker answering now: {(proxy, server): row}."""
    _status, text = http_get(client, lb, 8404, "/stats;csv;norefresh")
    return {(r["pxname"], r["svname"]): r for r in csv.DictReader(io.StringIO(text.lstrip("# ")))}


def install_publisher(client) -> None:
    """Copy tests/harness/publisher.py into the client container (cheap: done before each use)."""
    content = PUBLISHER.read_bytes()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo(Path(PUBLISHER_IN_CLIENT).name)
        info.size, info.mode = len(content), 0o644
        tar.addfile(info, io.BytesIO(content))
    client.containers.get(CLIENT).put_archive(str(Path(PUBLISHER_IN_CLIENT).parent), archive.getvalue())


def publisher(client, *args: str) -> tuple[int, str, str]:
    """Run the client's test publisher (start/status/alive/stop): (exit code, stdout, stderr)."""
    result = client.containers.get(CLIENT).exec_run(["python3", PUBLISHER_IN_CLIENT, *args], demux=True)
    out, err = result.output
    return result.exit_code, (out or b"").decode(), (err or b"").decode()


def publish_checks(client, seconds: float = 60) -> bool:
    """A stream through each balancer on 1935 and 80; prints where each landed and the IP seen.

    Each stream runs until it has been seen on a media server (or `seconds` passed), then is
    stopped; a stream that ended before that (cut) fails its row.
    """
    client_ip = address(client, CLIENT, PUBLIC)
    targets = [(lb, port) for lb in BALANCERS for port in (1935, 80)]
    say(f"publishing a test stream through each balancer on 1935 and 80 from {CLIENT} ({client_ip})")
    wanted = {f"check-{lb.removeprefix('rtmpedge-')}-{port}": (lb, port) for lb, port in targets}
    install_publisher(client)
    urls = [f"{key}=rtmp://{address(client, lb, PUBLIC)}:{port}/live/{key}" for key, (lb, port) in wanted.items()]
    code, _out, err = publisher(client, "start", *urls)
    if code:
        sys.exit(f"lab: the test publishers did not start: {err.strip()}")
    deadline, found = time.monotonic() + seconds, {}
    while time.monotonic() < deadline and len(found) < len(wanted):
        found.update({k: v for k, v in streams(client).items() if k in wanted})
        time.sleep(0.5)
    _code, out, err = publisher(client, "stop", *wanted)
    ended = json.loads(out) if out.strip() else {}
    print(f"\n  {'balancer':<14}{'port':<6}{'media server':<18}{'client IP seen':<16}result")
    ok = True
    for key, (lb, port) in wanted.items():
        server, seen_ip = found.get(key, ("-", "-"))
        state = ended.get(key, {}).get("state", "unknown")
        good = seen_ip == client_ip and state == "stopped"
        ok &= good
        verdict = "ok" if good else "FAILED" + ("" if state == "stopped" else f" (stream {state})")
        print(f"  {lb:<14}{port:<6}{server:<18}{seen_ip:<16}{verdict}")
    print()
    if err.strip():
        print(err.strip())
    return ok


def up(args) -> int:
    started = time.monotonic()
    say("docker engine (installs docker.io and starts dockerd when missing)")
    run("scripts/ensure-docker.sh")
    say("container images (first time: debootstrap of Debian 12 and 13 plus peers, usually 3-4 min)")
    run("scripts/images.sh", "all")
    client = docker.from_env()
    ensure_network(client, PUBLIC, masquerade=False)
    ensure_network(client, MEDIA, masquerade=True)
    # The balancers' reconcile job discovers the media servers through the Docker socket.
    sysctls = {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "2", "net.ipv4.conf.default.rp_filter": "2"}
    docker_socket = {"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"}}
    for name, image in BALANCERS.items():
        ensure_container(client, name, image, [MEDIA, PUBLIC], sysctls=sysctls, volumes=docker_socket)
    count = max(3, len(media_containers(client)))
    names = create_media(client, count)
    ensure_container(client, CLIENT, CLIENT_IMAGE, [PUBLIC])
    if monitoring_enabled():
        ensure_container(client, PROMETHEUS, PROMETHEUS_IMAGE, [MEDIA])
    wait_for_stat(client, names)
    say("ansible-playbook site.yml -i inventories/lab (first time about 3 min; a re-run that changes nothing 1-2 min)")
    ansible_playbook("site.yml")
    ok = publish_checks(client)
    lb1 = address(client, "rtmpedge-lb1", MEDIA)
    lb1_public = address(client, "rtmpedge-lb1", PUBLIC)
    media_ips = ", ".join(address(client, n, MEDIA) for n in names)
    prometheus_line = (
        f"http://{address(client, PROMETHEUS, MEDIA)}:9090/alerts   (Prometheus with the shipped rules)"
        if monitoring_enabled()
        else "LAB_MONITORING=0: no Prometheus in this lab"
    )
    print(f"""Next:
  stats    http://{lb1}:8404/stats   (user lab, password lab; lb2: make lab-status shows its address)
  metrics  http://{lb1}:8404/metrics
  publish  ffmpeg -re -f lavfi -i testsrc -f lavfi -i sine -c:v libx264 -c:a aac -f flv rtmp://{lb1_public}:1935/live/mykey
           (OBS: server rtmp://{lb1_public}:1935/live, any stream key)
  watch    ffplay rtmp://<media server>:1935/live/mykey   (media servers: {media_ips})
  alerts   {prometheus_line}
  fleet    make lab-scale N=5, then make lab-status
  remove   make lab-down
""")
    say(f"done in {time.monotonic() - started:.0f}s")
    return 0 if ok else 1


def reconcile_now(client, allow_shrink: bool) -> None:
    """Run each balancer's reconcile job once (cron would within a minute) and print its line.

    A scale-in is intended here, so it may remove more than the job's usual limit.
    """
    job = "rtmpedge-reconcile" + (" --allow-shrink" if allow_shrink else "")
    for lb in BALANCERS:
        container = client.containers.get(lb)
        before = workers(container)
        result = container.exec_run(["sh", "-c", f"/usr/local/sbin/{job} 2>&1"])
        line = result.output.decode().strip().splitlines()[-1] if result.output else "(no output)"
        after = workers(container)
        print(f"  {lb}: {line}  [workers {' '.join(before)} -> {' '.join(after)}]")


def workers(container) -> list[str]:
    command = 'pgrep -P "$(systemctl show -p MainPID --value haproxy)" -x haproxy | sort'
    return container.exec_run(["sh", "-c", command]).output.decode().split()


def scale(args) -> int:
    client = docker.from_env()
    current = media_containers(client)
    if args.count < 1:
        sys.exit("lab: N must be at least 1")
    if args.count >= len(current):
        names = create_media(client, args.count)
        new = names[len(current) :]
        wait_for_stat(client, names)
        if new:
            # Return routing for transparent mode on the new servers only; HAProxy is not touched.
            say(f"return routes on {', '.join(new)} (ansible-playbook site.yml --limit)")
            ansible_playbook("site.yml", "--limit", ",".join(new))
    else:
        for container in current[args.count :]:
            say(f"draining {container.name} on both balancers, then removing it")
            ansible_playbook("playbooks/drain.yml", "-e", f"media_server={container.name}", "-e", "drain_timeout=600")
            container.remove(force=True, v=True)
    say("running the reconcile job on each balancer now (cron would within a minute)")
    reconcile_now(client, allow_shrink=args.count < len(current))
    return status(args)


def backend_info() -> dict[str, dict]:
    """Each balancer's haproxy_backend_info result (the collection's own reader, run by ansible)."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
    }
    argv = [str(ROOT / ".venv/bin/ansible"), "balancers", "-i", "inventories/lab", "-m"]
    result = subprocess.run(
        [*argv, "rtmpedge.balancer.haproxy_backend_info"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]
    except (ValueError, KeyError, IndexError):
        sys.exit(f"lab: cannot read the balancers' backends: {result.stderr.strip()[-500:] or result.stdout[-500:]}")


def status(_args) -> int:
    client = docker.from_env()
    info = backend_info()
    for lb in BALANCERS:
        answer = info.get(lb, {})
        if "servers" not in answer:
            say(f"{lb}: {answer.get('msg', 'no answer')} (make lab)")
            return 1
        workers = " ".join(str(w["pid"]) for w in answer["workers"])
        print(f"\n{lb}  stats http://{address(client, lb, MEDIA)}:8404/stats  workers {workers}")
        print(f"  {'server':<18}{'address':<22}{'state':<8}{'status':<10}{'sessions':<10}weight")
        for s in answer["servers"]:
            where = f"{s['address']}:{s['port']}"
            print(f"  {s['name']:<18}{where:<22}{s['state']:<8}{s['status']:<10}{s['sessions']:<10}{s['weight']}")
    print()
    return 0


def down(_args) -> int:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException:
        say("no docker engine answers: nothing to remove")
        return 0
    for container in client.containers.list(all=True, filters={"label": f"{LAB_LABEL}=1"}):
        say(f"removing {container.name}")
        container.remove(force=True, v=True)
    for network in client.networks.list(filters={"label": f"{LAB_LABEL}=1"}):
        say(f"removing network {network.name}")
        network.remove()
    say("the lab is gone (the rtmpedge/* images stay, for the next make lab)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up").set_defaults(func=up)
    commands.add_parser("down").set_defaults(func=down)
    commands.add_parser("status").set_defaults(func=status)
    scaler = commands.add_parser("scale")
    scaler.add_argument("count", type=int)
    scaler.set_defaults(func=scale)
    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
