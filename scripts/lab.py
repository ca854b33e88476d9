"""The local lab: two balancers, nginx-rtmp media servers and an ffmpeg client on docker.

  lab.py up          networks, containers, site.yml (transparent mode, reconcile job), test streams
                     CLOUD=aws: the cloud lab instead (docs/scaling.md): a local moto server as AWS,
                     the media servers an Auto Scaling group and an ECS service (PROXY protocol)
  lab.py scale N     N media servers in all; the balancers' reconcile job adds them at runtime
                     (the cloud lab: `lab.py cloud-scale INSTANCES TASKS` sets the desired counts)
  lab.py status      each balancer's view of the fleet: state, sessions, weight
  lab.py down        remove every container and network of the lab (and the cloud lab's AWS)

Names follow the lab contract in docs/lab.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import docker
import docker.errors

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from harness import nginx_stat, pki  # noqa: E402 - the harness's stat-page reader and test CA
from harness.containers import SYSTEMD  # noqa: E402 - what systemd needs as PID 1 in a container

PUBLIC, MEDIA = "rtmpedge-public", "rtmpedge-media"
# The media network's address plan: the cloud lab's VPC lies inside it (harness/cloud.py), and
# docker gives a container a chosen address only on a network with its own subnet.
MEDIA_SUBNET, MEDIA_GATEWAY = "10.213.0.0/16", "10.213.0.1"
# Both networks are dual-stack: IPv6 publishers reach the cloud lab's balancers (docs/ipv6.md). The
# media network must be too: docker routes a container's IPv4 default via a dual-stack network
# before an IPv4-only one, and the public network has no masquerade (no way out for apt).
PUBLIC_SUBNET6, MEDIA_SUBNET6 = "fd00:7274:6d70::/64", "fd00:7274:6d71::/64"
CLOUD_LABEL = "rtmpedge.cloud-lab"
CLOUD_ENDPOINT = f"http://{MEDIA_GATEWAY}:5213"  # the cloud harness's moto server, on the gateway
CLOUD_DIR = ROOT / "build" / "lab"
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
PUBLISHERS_DIR_IN_CLIENT = "/tmp/rtmpedge-publishers"  # noqa: S108 - publisher.DEFAULT_DIR, in the client
ENHANCED_FFMPEG_IN_CLIENT = "/usr/local/bin/ffmpeg-enhanced"  # publisher.ENHANCED_FFMPEG
# The passive TCP capture that hashes what a connection carried (tests/lab/test_encoders.py).
CAPTURE = ROOT / "tests" / "harness" / "tcp_capture.py"
CAPTURE_IN_CONTAINER = "/usr/local/bin/rtmpedge-tcp-capture"
# The lab's own CA and the balancers' RTMPS bundle (inventories/lab*/group_vars/all.yml read it);
# the client trusts the CA as a publisher's system would.
PKI_DIR = CLOUD_DIR / "pki"
RTMPS_NAME = "ingest.lab"
CA_IN_CLIENT = "/usr/local/share/ca-certificates/rtmpedge-lab-ca.crt"  # in the balancers too
STATS_AUTH = ("lab", "lab")  # haproxy_management_user/password in inventories/lab/group_vars/all.yml


def say(message: str) -> None:
    print(f"lab: {message}", flush=True)


def run(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, cwd=ROOT, **kwargs)


def media_name(index: int) -> str:
    return f"rtmpedge-media{index}"


def cloud_requested() -> bool:
    """CLOUD=aws: the cloud lab; empty: the docker lab."""
    wanted = os.environ.get("CLOUD", "")
    if wanted not in ("", "aws"):
        sys.exit(f"lab: CLOUD={wanted!r}: the cloud lab knows aws only")
    return wanted == "aws"


def ensure_network(client, name: str, masquerade: bool, *, subnet=None, subnet6=None, labels=None):
    """The lab network `name`; `subnet6` makes it dual-stack (docker picks its IPv4 subnet then)."""
    try:
        network = client.networks.get(name)
    except docker.errors.NotFound:
        say(
            f"creating network {name}"
            + ("" if masquerade else " (no IP masquerade: transparent SYNs keep their source)")
            + (f", IPv6 {subnet6}" if subnet6 else "")
        )
        options = {} if masquerade else {"com.docker.network.bridge.enable_ip_masquerade": "false"}
        pools = [docker.types.IPAMPool(subnet=subnet, gateway=MEDIA_GATEWAY)] if subnet else []
        pools += [docker.types.IPAMPool(subnet=subnet6)] if subnet6 else []
        return client.networks.create(
            name,
            driver="bridge",
            options=options,
            enable_ipv6=bool(subnet6),
            ipam=docker.types.IPAMConfig(pool_configs=pools) if pools else None,
            labels={LAB_LABEL: "1", **(labels or {})},
        )
    found = {c.get("Subnet") for c in network.attrs.get("IPAM", {}).get("Config") or []}
    for wanted in filter(None, (subnet, subnet6)):
        if wanted not in found:
            sys.exit(f"lab: network {name} has {sorted(found)}, not {wanted} (an older lab): make lab-down first")
    return network


def cloud_lab(client) -> bool:
    """Whether the running lab is the cloud lab (its media network says so)."""
    try:
        return client.networks.get(MEDIA).attrs.get("Labels", {}).get(CLOUD_LABEL) == "aws"
    except docker.errors.NotFound:
        return cloud_requested()


def inventory_dir(client=None) -> str:
    cloud = cloud_lab(client) if client is not None else cloud_requested()
    return "inventories/lab-aws" if cloud else "inventories/lab"


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


def address(client, name: str, network: str, family: int = 4) -> str:
    """A container's address on a lab network (family 6: its IPv6 address there)."""
    container = client.containers.get(name)
    settings = container.attrs["NetworkSettings"]["Networks"][network]
    return settings["IPAddress"] if family == 4 else settings["GlobalIPv6Address"]


def media_containers(client) -> list:
    found = client.containers.list(
        all=True, filters={"label": [f"{LAB_LABEL}=1", f"{MEDIA_LABEL}=media"]}, ignore_removed=True
    )
    return sorted(found, key=lambda c: int(c.name.removeprefix("rtmpedge-media")))


def cloud_containers(client) -> list:
    """The cloud lab's media servers: one container per running instance or task (harness/cloud.py)."""
    # ignore_removed: a terminated machine's container can go between the listing and its inspection.
    found = client.containers.list(
        all=True, filters={"label": [f"{LAB_LABEL}=1", f"{MEDIA_LABEL}=cloud-media"]}, ignore_removed=True
    )
    return sorted(found, key=lambda c: c.name)


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


def ansible_playbook(*args: str, inventory: str = "inventories/lab") -> None:
    """Every playbook run of the lab; RTMPEDGE_LAB_VARS names an extra-vars file to add (make bench)."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false"}
    extra = ["-e", "@" + os.environ["RTMPEDGE_LAB_VARS"]] if os.environ.get("RTMPEDGE_LAB_VARS") else []
    if not monitoring_enabled() and "--limit" not in args:
        extra += ["--limit", "all:!monitoring"]
    run(str(ROOT / ".venv/bin/ansible-playbook"), "-i", inventory, *extra, *args, env=env)


def streams(client) -> dict[str, tuple[str, str]]:
    """Live streams on the media servers' stat pages: {stream: (server, publisher address)}."""
    seen = {}
    for container in media_containers(client) + cloud_containers(client):
        if container.status != "running":
            continue
        try:
            where = container.attrs["NetworkSettings"]["Networks"][MEDIA]["IPAddress"]
            page = nginx_stat.stat_page(f"http://{where}:8080/stat")
        except (KeyError, OSError):
            continue  # a cloud machine terminated while it was being read: no stream there any more
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


def ensure_certificate(client) -> None:
    """The lab CA (made once), an RTMPS certificate for the balancers' public addresses, the client's trust."""
    authority = pki.Authority.kept_in(PKI_DIR, "rtmpedge lab CA", days=825)
    bundle_file = PKI_DIR / "rtmps.pem"
    names = [RTMPS_NAME, *(address(client, lb, PUBLIC, family) for lb in BALANCERS for family in (4, 6))]
    current = bundle_file.read_text() if bundle_file.exists() else ""
    if not current or pki.names_of(current) != set(names) or pki.days_left(current) < 30:
        say(f"issuing the balancers' RTMPS certificate from the lab CA ({', '.join(names)})")
        bundle, _leaf = authority.issue(pki.new_serial(), names, days=90)
        bundle_file.touch(mode=0o600)
        bundle_file.write_text(bundle)
    # The balancers too: the lab's ACME CA (tests/lab/test_acme.py) serves its API with a certificate from it.
    for name in (CLIENT, *BALANCERS):
        trust(client, name, CA_IN_CLIENT, authority.pem)


def trust(client, container: str, path: str, pem: str | None) -> None:
    """Make a container's system trust a CA certificate (pem None: trust it no longer)."""
    if pem is None:
        client.containers.get(container).exec_run(["rm", "-f", path])
    else:
        put_file(client, container, path, pem.encode())
    trusted = client.containers.get(container).exec_run(["update-ca-certificates", "--fresh"])
    if trusted.exit_code:
        sys.exit(f"lab: {container} could not update its trusted CAs: {trusted.output.decode(errors='replace')}")


def put_file(client, container: str, path: str, content: bytes | Path, mode: int = 0o644) -> None:
    """Copy bytes (or a host file, streamed) into a container's file."""
    with tempfile.TemporaryFile() as archive:
        with tarfile.open(fileobj=archive, mode="w") as tar:
            if isinstance(content, Path):
                tar.add(content, arcname=Path(path).name, filter=lambda info: _with_mode(info, mode))
            else:
                info = tarfile.TarInfo(Path(path).name)
                info.size, info.mode = len(content), mode
                tar.addfile(info, io.BytesIO(content))
        archive.seek(0)
        client.containers.get(container).put_archive(str(Path(path).parent), archive)


def _with_mode(info: tarfile.TarInfo, mode: int) -> tarfile.TarInfo:
    info.mode, info.uid, info.gid, info.uname, info.gname = mode, 0, 0, "root", "root"
    return info


def install_publisher(client) -> None:
    """Copy tests/harness/publisher.py into the client container (cheap: done before each use)."""
    put_file(client, CLIENT, PUBLISHER_IN_CLIENT, PUBLISHER.read_bytes())


def install_enhanced_ffmpeg(client) -> None:
    """The static ffmpeg of the imageio-ffmpeg package (.venv) as the client's enhanced-RTMP publisher.

    Debian 12's ffmpeg 5.1 predates enhanced RTMP (6.1 added HEVC in FLV); the binary is 170 MB,
    so it is copied once per client container.
    """
    import imageio_ffmpeg  # noqa: PLC0415 - the encoder tests only

    binary = Path(imageio_ffmpeg.get_ffmpeg_exe())
    if file_size(client, CLIENT, ENHANCED_FFMPEG_IN_CLIENT) != binary.stat().st_size:
        say(f"copying {binary.name} into {CLIENT} as {ENHANCED_FFMPEG_IN_CLIENT}")
        put_file(client, CLIENT, ENHANCED_FFMPEG_IN_CLIENT, binary, mode=0o755)


def file_size(client, container: str, path: str) -> int | None:
    """Bytes of a file in a container; None when there is none."""
    code, out, _err = run_in(client, container, "stat", "-c", "%s", path)
    return None if code else int(out)


def publisher_clip_size(client, name: str) -> int:
    """Bytes of a clip the client's test publishers loop (publisher.py encodes it on first use)."""
    size = file_size(client, CLIENT, f"{PUBLISHERS_DIR_IN_CLIENT}/{name}")
    if size is None:
        raise RuntimeError(f"no clip {name} in {CLIENT}")
    return size


def install_capture(client, container: str) -> None:
    """Copy tests/harness/tcp_capture.py into a container (the byte-for-byte proofs)."""
    put_file(client, container, CAPTURE_IN_CONTAINER, CAPTURE.read_bytes())


def capture(client, container: str, *args: str) -> tuple[int, str, str]:
    """Run the container's TCP capture (start/peek/stop): (exit code, stdout, stderr)."""
    return run_in(client, container, "python3", CAPTURE_IN_CONTAINER, *args)


def run_in(client, container: str, *argv: str) -> tuple[int, str, str]:
    """Run a command in a lab container: (exit code, stdout, stderr)."""
    result = client.containers.get(container).exec_run(list(argv), demux=True)
    out, err = result.output
    return result.exit_code, (out or b"").decode(), (err or b"").decode()


def publisher(client, *args: str) -> tuple[int, str, str]:
    """Run the client's test publisher (start/status/alive/stop): (exit code, stdout, stderr)."""
    return run_in(client, CLIENT, "python3", PUBLISHER_IN_CLIENT, *args)


PUBLISH_PORTS = {1935: "rtmp", 80: "rtmp", 443: "rtmps"}  # the proof table's listeners
RTMPS_TLS12_PORT = 8443  # RTMPS up to TLS 1.2, for librtmp (inventories/lab/group_vars/all.yml)
SCHEMES = {**PUBLISH_PORTS, RTMPS_TLS12_PORT: "rtmps"}  # every public listener of a balancer


def publish_url(client, lb: str, port: int, key: str, family: int = 4) -> str:
    """Where the client publishes through a balancer's public address (RTMPS: verified against the lab CA)."""
    host = address(client, lb, PUBLIC, family)
    return f"{SCHEMES[port]}://{host if family == 4 else f'[{host}]'}:{port}/live/{key}"


def families(client) -> tuple[int, ...]:
    """The address families publishers use in this lab.

    The cloud lab is in PROXY-protocol mode, so it also takes IPv6 publishers (inventories/lab-aws).
    The docker lab is in transparent mode with IPv4 media servers, and the role refuses IPv6
    listeners there: an IPv6 client cannot be the source of a connection to an IPv4 server (docs/ipv6.md).
    """
    return (4, 6) if cloud_lab(client) else (4,)


def publish_checks(client, seconds: float = 60) -> bool:
    """A stream through each balancer on 1935, 80 and RTMPS on 443 (and over IPv6 where the lab has it);
    prints where each landed and the IP seen.

    Each stream runs until it has been seen on a media server (or `seconds` passed), then is
    stopped; a stream that ended before that (cut) fails its row. One round per address family:
    the cloud lab's media servers take one stream each (maxconn 1), so a round fits its fleet.
    """
    client_ips = {family: address(client, CLIENT, PUBLIC, family) for family in families(client)}
    say(
        f"publishing a test stream through each balancer on 1935, 80 and 443 (RTMPS) from {CLIENT} "
        f"({', '.join(client_ips.values())})"
    )
    install_publisher(client)
    rows, errors = [], []
    for family, client_ip in client_ips.items():
        wanted = {
            f"check-{lb.removeprefix('rtmpedge-')}-{port}" + ("-v6" if family == 6 else ""): (lb, port)
            for lb in BALANCERS
            for port in PUBLISH_PORTS
        }
        found, ended, err = _publish_round(client, family, wanted, seconds)
        errors += [err] if err else []
        for key, (lb, port) in wanted.items():
            server, seen_ip = found.get(key, ("-", "-"))
            rows.append((lb, f"{PUBLISH_PORTS[port]}:{port}" + (" IPv6" if family == 6 else ""), server, seen_ip,
                         client_ip, ended.get(key, {}).get("state", "unknown")))  # fmt: skip
    width = max([18, *(len(row[2]) + 2 for row in rows)])
    seen_width = max(16, *(len(ip) + 2 for ip in client_ips.values()))
    print(f"\n  {'balancer':<14}{'listener':<16}{'media server':<{width}}{'client IP seen':<{seen_width}}result")
    ok = True
    for lb, listener, server, seen_ip, client_ip, state in rows:
        good = seen_ip == client_ip and state == "stopped"
        ok &= good
        verdict = "ok" if good else "FAILED" + ("" if state == "stopped" else f" (stream {state})")
        print(f"  {lb:<14}{listener:<16}{server:<{width}}{seen_ip:<{seen_width}}{verdict}")
    if families(client) == (4,):
        print("  (no IPv6 rows: transparent mode towards IPv4 media servers takes IPv4 publishers; docs/ipv6.md)")
    print()
    if errors:
        print("\n".join(errors))
    return ok


def _publish_round(client, family: int, wanted: dict[str, tuple[str, int]], seconds: float):
    """Start every wanted stream, wait until each is on a media server, stop them: (found, ended, errors)."""
    urls = [f"{key}={publish_url(client, lb, port, key, family)}" for key, (lb, port) in wanted.items()]
    code, _out, err = publisher(client, "start", *urls)
    if code:
        sys.exit(f"lab: the test publishers did not start: {err.strip()}")
    deadline, found = time.monotonic() + seconds, {}
    while time.monotonic() < deadline and len(found) < len(wanted):
        found.update({k: v for k, v in streams(client).items() if k in wanted})
        time.sleep(0.5)
    _code, out, err = publisher(client, "stop", *wanted)
    return found, (json.loads(out) if out.strip() else {}), err.strip()


def up(args) -> int:
    started = time.monotonic()
    say("docker engine (installs docker.io and starts dockerd when missing)")
    run("scripts/ensure-docker.sh")
    say("container images (first time: debootstrap of Debian 12 and 13 plus peers, usually 3-4 min)")
    run("scripts/images.sh", "all")
    client = docker.from_env()
    cloud = cloud_requested()
    try:
        running_cloud = client.networks.get(MEDIA).attrs.get("Labels", {}).get(CLOUD_LABEL) == "aws"
    except docker.errors.NotFound:
        running_cloud = cloud
    if running_cloud != cloud:
        sys.exit(f"lab: the running lab is the {'cloud' if running_cloud else 'docker'} lab: make lab-down first")
    ensure_network(client, PUBLIC, masquerade=False, subnet6=PUBLIC_SUBNET6)
    ensure_network(
        client,
        MEDIA,
        masquerade=True,
        subnet=MEDIA_SUBNET,
        subnet6=MEDIA_SUBNET6,
        labels={CLOUD_LABEL: "aws"} if cloud else {},
    )
    sysctls = {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "2", "net.ipv4.conf.default.rp_filter": "2"}
    # The docker lab's reconcile job discovers the media servers through the Docker socket.
    docker_socket = {} if cloud else {"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"}}
    for name, image in BALANCERS.items():
        ensure_container(client, name, image, [MEDIA, PUBLIC], sysctls=sysctls, volumes=docker_socket)
    ensure_container(client, CLIENT, CLIENT_IMAGE, [PUBLIC])
    if monitoring_enabled():
        ensure_container(client, PROMETHEUS, PROMETHEUS_IMAGE, [MEDIA])
    if cloud:
        start_cloud()
        names = [c.name for c in wait_for_cloud(client)]
    else:
        names = create_media(client, max(3, len(media_containers(client))))
    wait_for_stat(client, names)
    ensure_certificate(client)
    inventory = inventory_dir(client)
    say(f"ansible-playbook site.yml -i {inventory} (first time about 3 min; a re-run that changes nothing 1-2 min)")
    ansible_playbook("site.yml", inventory=inventory)
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


def _cloud_pid() -> int | None:
    try:
        pid = int((CLOUD_DIR / "cloud.pid").read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def start_cloud(instances: int = 2, tasks: int = 2) -> None:
    """The cloud harness (moto as AWS, and the hypervisor), then the cloud's shape (harness/cloud.py)."""
    from harness import cloud  # noqa: PLC0415 - the cloud lab only

    if _cloud_pid() is None:
        CLOUD_DIR.mkdir(parents=True, exist_ok=True)
        say(f"starting the cloud lab's AWS: moto on {CLOUD_ENDPOINT}, and a container for every instance and task")
        with open(CLOUD_DIR / "cloud.log", "ab") as log:
            bind = CLOUD_ENDPOINT.removeprefix("http://")
            process = subprocess.Popen(
                [sys.executable, "-m", "harness.cloud", "serve", "--bind", bind, "--network", MEDIA],
                cwd=ROOT / "tests",
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # it outlives this command, until make lab-down
            )
        (CLOUD_DIR / "cloud.pid").write_text(str(process.pid))
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{CLOUD_ENDPOINT}/moto-api/", timeout=2).close()  # noqa: S310 - the lab's own
            break
        except OSError:
            if time.monotonic() > deadline or _cloud_pid() is None:
                sys.exit(f"lab: the cloud harness does not answer on {CLOUD_ENDPOINT} (log: {CLOUD_DIR / 'cloud.log'})")
            time.sleep(0.5)
    ids = cloud.bootstrap(CLOUD_ENDPOINT, instances=instances, tasks=tasks)
    say(f"the cloud: Auto Scaling group {ids['asg']}, ECS service {ids['cluster']}/{ids['service']}")


def wait_for_cloud(client, seconds: float = 90) -> list:
    """The cloud's machines, once there is a container for each instance and task it runs."""
    from harness import cloud  # noqa: PLC0415

    aws = cloud.clients(CLOUD_ENDPOINT)
    deadline = time.monotonic() + seconds
    while True:
        group = aws["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[cloud.ASG])["AutoScalingGroups"]
        service = aws["ecs"].describe_services(cluster=cloud.CLUSTER, services=[cloud.SERVICE])["services"]
        wanted = (group[0]["DesiredCapacity"] if group else 0) + (service[0]["desiredCount"] if service else 0)
        running = [c for c in cloud_containers(client) if c.status == "running"]
        if len(running) == wanted:
            return running
        if time.monotonic() > deadline:
            sys.exit(f"lab: {len(running)} cloud machines run, {wanted} wanted (log: {CLOUD_DIR / 'cloud.log'})")
        time.sleep(1)


def stop_cloud() -> None:
    pid = _cloud_pid()
    if pid is not None:
        say("stopping the cloud lab's AWS")
        os.killpg(pid, signal.SIGTERM)
    (CLOUD_DIR / "cloud.pid").unlink(missing_ok=True)


def cloud_scale(args) -> int:
    from harness import cloud  # noqa: PLC0415

    client = docker.from_env()
    if not cloud_lab(client):
        sys.exit("lab: not a cloud lab (make lab CLOUD=aws)")
    aws = cloud.clients(CLOUD_ENDPOINT)
    aws["autoscaling"].set_desired_capacity(AutoScalingGroupName=cloud.ASG, DesiredCapacity=args.instances)
    aws["ecs"].update_service(cluster=cloud.CLUSTER, service=cloud.SERVICE, desiredCount=args.tasks)
    say(f"desired: {args.instances} instances, {args.tasks} tasks (protected ones are not scaled in)")
    return 0


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
    if cloud_lab(client):
        sys.exit("lab: the cloud lab scales through its API: lab.py cloud-scale INSTANCES TASKS")
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
    argv = [str(ROOT / ".venv/bin/ansible"), "balancers", "-i", inventory_dir(docker.from_env()), "-m"]
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
    stop_cloud()
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException:
        say("no docker engine answers: nothing to remove")
        return 0
    for container in client.containers.list(all=True, filters={"label": f"{LAB_LABEL}=1"}, ignore_removed=True):
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
    cloud_scaler = commands.add_parser("cloud-scale")
    cloud_scaler.add_argument("instances", type=int)
    cloud_scaler.add_argument("tasks", type=int)
    cloud_scaler.set_defaults(func=cloud_scale)
    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
