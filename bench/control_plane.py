"""Bench part 5: discovery and rendering at 10,000 servers, and site.yml on the lab."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

from continuity import summary
from labctl import ROOT

ANSIBLE = {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}


def timed(argv: list[str], env: dict | None = None) -> tuple[float, str]:
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT, env=env)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed: {(result.stdout + result.stderr)[-3000:]}")
    return elapsed, result.stdout


def fleet_files(count: int, where: Path) -> tuple[Path, Path]:
    """The same fleet twice: the plugin's static source, and a plain YAML inventory."""
    servers = [
        {"name": f"media{i:05d}", "address": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}", "port": 1935}
        for i in range(count)
    ]
    plugin = where / "bench.media_servers.yml"
    plugin.write_text(
        json.dumps({"plugin": "rtmpedge.balancer.media_servers", "sources": [{"type": "static", "servers": servers}]})
    )
    hosts = {s["name"]: {"rtmp_address": s["address"], "rtmp_port": s["port"]} for s in servers}
    plain = where / "hosts.yml"
    plain.write_text(json.dumps({"all": {"children": {"media_servers": {"hosts": hosts}}}}))
    return plugin, plain


def inventory_and_render(count: int, runs: int, env: dict) -> dict:
    where = Path(tempfile.mkdtemp(prefix="rtmpedge-bench-inv-"))
    plugin, plain = fleet_files(count, where)
    times: dict[str, list[float]] = {"plugin": [], "yaml": []}
    for _n in range(runs):
        for name, path in (("plugin", plugin), ("yaml", plain)):
            seconds, out = timed([str(ROOT / ".venv/bin/ansible-inventory"), "-i", str(path), "--list"], env)
            found = len(json.loads(out)["media_servers"]["hosts"])
            if found != count:
                raise RuntimeError(f"{name} inventory listed {found} media servers, not {count}")
            times[name].append(seconds)
    output = where / "haproxy.cfg"
    # The publisher lists the config reads, where the role would write them.
    lists = []
    for name in ("allow", "deny"):
        path = where / f"publishers-{name}.acl"
        path.touch()
        lists += ["-e", f"_haproxy_publishers_{name}_file={path}"]
    render_times, check_times = [], []
    for _n in range(runs):
        seconds, _out = timed(
            [
                str(ROOT / ".venv/bin/ansible-playbook"),
                "-i",
                str(plugin),
                "bench/render.yml",
                "-e",
                f"bench_output={output}",
                "-e",
                "haproxy_client_ip_mode=none",
                *lists,
            ],
            env,
        )
        render_times.append(seconds)
        servers = sum(1 for line in output.read_text().splitlines() if line.strip().startswith("server "))
        if servers != count:
            raise RuntimeError(f"the rendered config has {servers} server lines, not {count}")
        seconds, _out = timed(["haproxy", "-c", "-q", "-f", str(output)])
        check_times.append(seconds)
    plugin_s, yaml_s = summary(times["plugin"]), summary(times["yaml"])
    return {
        "servers": count,
        "inventory_plugin_s": plugin_s,
        "inventory_yaml_s": yaml_s,
        "plugin_to_yaml_ratio": plugin_s["median"] / yaml_s["median"],
        "render_playbook_s": summary(render_times),
        "haproxy_check_s": summary(check_times),
        "config_bytes": output.stat().st_size,
    }


def site_yml(extra: list[str], env: dict) -> dict:
    """One site.yml run on the lab: wall time and the recap's changed count."""
    argv = [str(ROOT / ".venv/bin/ansible-playbook"), "-i", "inventories/lab", "site.yml", *extra]
    if env.get("RTMPEDGE_LAB_VARS"):
        argv += ["-e", "@" + env["RTMPEDGE_LAB_VARS"]]
    seconds, out = timed(argv, {**env, "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false"})
    changed = sum(int(n) for n in re.findall(r"changed=(\d+)", out.split("PLAY RECAP")[-1]))
    return {"seconds": seconds, "changed": changed}
