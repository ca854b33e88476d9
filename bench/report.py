"""docs/benchmarks.md and its plots from bench/results.json (also: python bench/report.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from report_cloud import cloud_section, cloud_summary
from report_growth import growth_section, growth_summary
from report_load import capacity_section, churn_section, churn_summary, storm_section, storm_summary

QUICK_NOTE = "A quick run (`BENCH_QUICK=1`): fewer, shorter runs. "
WAY_NAMES = {
    "reconcile": "rtmpedge reconcile",
    "reload": "reload for every change",
    "restart": "systemctl restart",
    "seed": "haproxy -sf (no socket transfer)",
}


def fmt(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def spread(s: dict, digits: int = 2, scale: float = 1.0) -> str:
    """median (min-max over n runs)"""
    if not s or s.get("median") is None:
        return "-"
    m, lo, hi = (s[k] * scale for k in ("median", "min", "max"))
    return f"{m:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f}, n={s['runs']})"


def plot_continuity(data: dict, path: Path) -> None:
    ways = list(data)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    x = range(len(ways))
    ax.bar([i - 0.2 for i in x], [data[w]["broken_streams"] for w in ways], 0.4, label="broken streams")
    ax.bar([i + 0.2 for i in x], [data[w]["new_sessions"]["failures"] for w in ways], 0.4, label="refused new sessions")
    ax.set_xticks(list(x), [WAY_NAMES[w] for w in ways])
    ax.set_ylabel("count over the run")
    ax.set_title(f"{data[ways[0]]['publishers']} live publishers, {data[ways[0]]['changes']} fleet changes")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_bars(labels: list[str], stats: list[dict], ylabel: str, title: str, path: Path, *, log: bool = False) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    medians = [s["median"] for s in stats]
    errors = [
        [m - s["min"] for m, s in zip(medians, stats, strict=True)],
        [s["max"] - m for m, s in zip(medians, stats, strict=True)],
    ]
    ax.bar(labels, medians, yerr=errors, capsize=4)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_capacity(data: dict, path: Path) -> None:
    steps = data["steps"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    counts = [s["streams"] for s in steps]
    ax.plot(counts, [s["haproxy_cpu_percent"] for s in steps], marker="o", label="HAProxy CPU %")
    ax.set_xlabel(f"concurrent streams at {data['bitrate'] / 1e6:g} Mbit/s")
    ax.set_ylabel("HAProxy CPU % (200 = both cores)")
    ax2 = ax.twinx()
    ax2.plot(
        counts, [s["haproxy_kib_per_stream"] for s in steps], marker="s", color="tab:orange", label="KiB per stream"
    )
    ax2.set_ylabel("HAProxy memory, KiB per stream")
    lossy = [s["streams"] for s in steps if not s["ok"]]
    if lossy:
        ax.axvline(lossy[0], color="tab:red", linestyle="--", label="first lossy step")
    ax.legend(loc="upper left")
    ax.set_title("One balancer (transparent mode), synthetic RTMP streams")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def continuity_table(data: dict) -> list[str]:
    lines = [
        "| way | broken streams | publishers never cut | refused new sessions | time to apply a change, s "
        "| HAProxy processes at the end | their RSS, MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for way, r in data.items():
        probes = r["new_sessions"]
        lines.append(
            f"| {WAY_NAMES[way]} | {r['broken_streams']} | {r['publishers_never_cut']} of {r['publishers']} "
            f"| {probes['failures']} of {probes['attempts']} | {spread(r['apply_seconds'])} "
            f"| {r.get('haproxy_processes_at_end', '-')} | {r.get('haproxy_rss_bytes_at_end', 0) / 2**20:.0f} |"
        )
    return lines


def forwarding_tables(data: dict) -> list[str]:
    bulk, hs, pub = data["bulk"], data["handshake_ms"], data["rtmp_publish"]
    direct_rate = bulk["direct"]["gbit_s"]["median"]
    lines = [
        "| path | bulk Gbit/s | ratio to direct | HAProxy CPU-s per Gbit | handshake ms median / p99 "
        "| ratio to direct |",
        "|---|---|---|---|---|---|",
    ]
    for name, b in bulk.items():
        cpu = spread(b.get("haproxy_cpu_s_per_gbit"), 3) if "haproxy_cpu_s_per_gbit" in b else "-"
        lines.append(
            f"| {name} | {spread(b['gbit_s'])} | {b['gbit_s']['median'] / direct_rate:.2f} | {cpu} | "
            f"{fmt(hs[name]['median_ms'])} / {fmt(hs[name]['p99_ms'])} | "
            f"{hs[name]['median_ms'] / hs['direct']['median_ms']:.2f} |"
        )
    mbytes = data["rtmp_publish_bytes"] / 1e6
    lines += [
        "",
        f"A real RTMP publish: the client's ffmpeg pushes {mbytes:.1f} MB of FLV (a 60 s 2 Mbit/s clip, 10 times) "
        "without `-re` (as fast as the path takes it) to nginx-rtmp.",
        "",
        "| path | seconds | Mbit/s | ratio to direct |",
        "|---|---|---|---|",
    ]
    direct = pub["direct"]["median"]
    for name, s in pub.items():
        lines.append(f"| {name} | {spread(s)} | {mbytes * 8 / s['median']:.0f} | {direct / s['median']:.2f} |")
    lines += [
        "",
        "Reading these: one bulk connection runs at the speed of the Python sink (about the same with and "
        "without a balancer), so the balancer's cost shows in its CPU per Gbit/s and in the handshake round "
        "trip (one more TCP connection and hop). The RTMP publish is limited by ffmpeg and nginx-rtmp, not by "
        "the path; through a balancer it can even finish sooner, as HAProxy's buffers decouple ffmpeg's "
        "writes from nginx-rtmp's reads.",
    ]
    return lines


def write(results: dict, docs: Path, results_link: str = "../bench/results.json") -> None:
    """benchmarks.md and img/ in `docs`; `results_link` is the raw figures' path as seen from there."""
    images = docs / "img"
    images.mkdir(parents=True, exist_ok=True)
    if "continuity" not in results:  # a BENCH_PARTS=growth run with no lab figures to keep
        lines = [
            "# Benchmarks",
            "",
            f"Measured on {results['date']}, {results['machine']['cpus']} cores. "
            f"{QUICK_NOTE if results['quick'] else ''}Raw figures: [results.json]({results_link}).",
            "",
            *growth_summary(results.get("growth")),
            *cloud_summary(results.get("cloud")),
            "",
            *growth_section(results.get("growth"), images),
            "",
            *cloud_section(results.get("cloud")),
        ]
        (docs / "benchmarks.md").write_text("\n".join(lines))
        return
    cont, conv, fwd, cap = (results[k] for k in ("continuity", "convergence", "forwarding", "capacity"))
    site = results["control_plane"]["site"]
    plot_continuity(cont, images / "bench-continuity.png")
    plot_bars(
        ["runtime path", "reload path", "1-min cron + reload"],
        [conv["runtime"], conv["reload"], conv["cron_reload"]],
        "seconds (log)",
        "Server appears in discovery -> first stream on it",
        images / "bench-convergence.png",
        log=True,
    )
    plot_bars(
        list(fwd["bulk"]),
        [b["gbit_s"] for b in fwd["bulk"].values()],
        "Gbit/s",
        "Bulk TCP after an RTMP handshake, one connection",
        images / "bench-forwarding.png",
    )
    plot_capacity(cap, images / "bench-capacity.png")
    versions = ", ".join(f"{lb}: {v}" for lb, v in results["haproxy_versions"].items())
    machine = results["machine"]
    ours = cont["reconcile"]
    worst = max((w for w in cont if w != "reconcile"), key=lambda w: cont[w]["broken_streams"])
    lines = [
        "# Benchmarks",
        "",
        "<!-- Written by `make bench` (bench/run.py) from bench/results.json; edit bench/report.py instead. -->",
        "",
        f"Measured on {results['date']} on this project's lab (`make lab`, docs/lab.md): {machine['cpus']} cores, "
        f"Linux {machine['kernel']}, everything (balancers, media servers, publishers, load generators) on the "
        f"same machine, which is shared and noisy. {QUICK_NOTE if results['quick'] else ''}"
        f"HAProxy: {versions}. Figures are medians with (min-max, n=runs); ratios are of medians. "
        f"The last run ({', '.join(results.get('parts_run', ['every part']))}) took {results['seconds'] / 60:.1f} min; "
        "a run of some parts keeps the other parts' figures.",
        "",
        "Reproduce: `make bench` (about 45 min: the lab's parts about 25, part 6 about 20), one part with "
        "`BENCH_PARTS` (bench/run.py lists them), or `BENCH_QUICK=1 make bench` (fewer, shorter runs). "
        f"Raw figures: [results.json]({results_link}).",
        "",
        "The lab runs the roles' defaults except for bench/lab-vars.yml: frontend maxconn 8000, and the "
        "per-source abuse limits off (every probe and synthetic stream comes from one address, the docker host). "
        "The RTMP protocol check stays on: every connection here starts with a real handshake.",
        "",
        "## Summary",
        "",
        f"- Under {ours['changes']} fleet changes with {ours['publishers']} live publishers, the collection's "
        f"reconcile broke **{ours['broken_streams']}** streams and refused **{ours['new_sessions']['failures']}** "
        f"new sessions; `{WAY_NAMES[worst]}` broke {cont[worst]['broken_streams']}.",
        f"- A new media server takes its first stream {fmt(conv['runtime']['median'], 2)} s after the job starts "
        f"(runtime API, no new worker); through a reload {fmt(conv['reload']['median'], 2)} s; with a one-minute "
        f"cron that reloads, {fmt(conv['cron_reload']['median'], 0)} s in the median.",
        f"- One balancer carried {cap['max_lossless_streams']} concurrent {cap['bitrate'] / 1e6:g} Mbit/s streams "
        "without loss in the steps tried (see part 4 for what stopped the next step).",
        *churn_summary(results.get("churn")),
        *storm_summary(results.get("storm")),
        *growth_summary(results.get("growth")),
        *cloud_summary(results.get("cloud")),
        "",
        "## 1. Stream continuity under change",
        "",
        f"{ours['publishers']} ffmpeg publishers (a 320x240 clip looped with `-re -c copy`, about 0.4 Mbit/s each) "
        f"push through lb1: {ours.get('publishers_at_start', ours['publishers'])} live from the start, the others "
        "arriving one by one between the changes, as publishers do. Meanwhile the same sequence of fleet changes "
        "is applied "
        f"{ours['changes']} times, {', '.join(f'{n} {k}' for k, n in ours['change_kinds'].items())}: "
        "a weight change, media4 added, another weight change, media4 removed, a full reload. "
        "A publisher that is cut logs it and reconnects. A prober opens a new RTMP session (handshake) "
        "through lb1 all along: 4 probers back to back, a few hundred a second.",
        "",
        "- **rtmpedge reconcile**: the collection's job with a static discovery file (`rtmpedge-reconcile`: "
        "runtime API for the fleet changes; a removed server drains), and the role's verified reload "
        "(`systemctl reload`, listening sockets handed over by the master) for the full reloads.",
        "- **reload for every change**: the same rendered file and the same verified reload, but for every "
        "change, as roles that reload on any template change do. A worker that took a stream stays until that "
        "stream ends, so every publisher that arrived between two reloads keeps one more old worker alive "
        "(processes and memory columns): the old workers' cost, which the runtime path pays only for the "
        "full reloads."
        if "reload" in cont
        else "",
        "- **systemctl restart**: the rendered file, then `systemctl restart haproxy`, "
        "as roles that restart on change do.",
        "- **haproxy -sf**: the rendered file, then `haproxy -D -f ... -sf <old pid>`: the old process finishes its "
        "streams, but the new one binds its own sockets, so connections queued on the old ones can be reset: "
        f"a narrow race, {cont['seed']['new_sessions']['failures']} of {cont['seed']['new_sessions']['attempts']} "
        "here. Its cost is a new process for every change, however small.",
        "",
        *continuity_table(cont),
        "",
        "![continuity](img/bench-continuity.png)",
        "",
        "## 2. Convergence latency",
        "",
        "media4 is added to discovery while 6 long sessions hold the other servers busy (so leastconn picks the "
        "new, empty one). Clock: from the start of the apply on the balancer to the first new session that "
        "HAProxy's stats count on media4 (probes every few ms).",
        "",
        "| path | seconds |",
        "|---|---|",
        f"| runtime path (`rtmpedge-reconcile`: `add server`, no reload) | {spread(conv['runtime'], 3)} |",
        f"| reload path (rendered file, verified reload) | {spread(conv['reload'], 3)} |",
        f"| one-minute cron + reload (computed: uniform wait over 60 s + the reload path) "
        f"| {spread(conv['cron_reload'], 1)} |",
        "",
        "With the reconcile role's defaults the job also runs from cron every minute, so the schedule dominates "
        "end to end; `reconcile_scheduler: timer` with `reconcile_timer_interval` shortens it (docs/reconcile.md). "
        "What the runtime path removes is the reload: no new worker, no old worker kept alive for hours by "
        "long streams.",
        "",
        "![convergence](img/bench-convergence.png)",
        "",
        "## 3. Forwarding cost",
        "",
        "A synthetic sink (bench/rtmp_load.py) takes media3's place on port 1935: it answers the RTMP handshake "
        "(the health check passes), reads a PROXY header when one comes, and counts bytes. Bulk: one connection "
        "after a handshake, 1 MiB writes for a few seconds. Handshake: connect + C0/C1 + S0/S1/S2 round trip. "
        "The client is the docker host, one bridge hop away, like the lab's publisher. "
        + ("" if "proxy_protocol" in fwd["bulk"] else "proxy_protocol mode is measured in full runs only. "),
        "",
        *forwarding_tables(fwd),
        "",
        "![forwarding](img/bench-forwarding.png)",
        "",
        *capacity_section(cap),
        "![capacity](img/bench-capacity.png)",
        "",
        "## 5. site.yml on the lab",
        "",
        "`site.yml` on the lab (2 balancers, 3 media servers, transparent mode):",
        "",
        "| run | seconds | changed |",
        "|---|---|---|",
    ]
    if "fresh_lab_up_s" in site:
        lines.append(
            f"| `make lab` from nothing (containers, site.yml, test streams) | {site['fresh_lab_up_s']:.0f} | - |"
        )
    if "converge" in site:  # a quick run on a lab that did not have the bench's limits yet
        converge = site["converge"]
        lines.append(f"| site.yml with the bench's limits | {converge['seconds']:.0f} | {converge['changed']} |")
    for run in site["rerun"]:
        lines.append(f"| idempotent re-run | {run['seconds']:.0f} | {run['changed']} |")
    lines += ["", *growth_section(results.get("growth"), images)]
    lines += ["", *storm_section(results.get("storm")), *churn_section(results.get("churn"))]
    lines += ["", *cloud_section(results.get("cloud"))]
    (docs / "benchmarks.md").write_text("\n".join(lines))


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    write(json.loads((root / "bench" / "results.json").read_text()), root / "docs")
    sys.exit(0)
