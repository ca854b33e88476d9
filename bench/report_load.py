"""benchmarks.md sections for load on the lab: capacity (part 4), reconnect storm (7), churn (8)."""

from __future__ import annotations


def _gbit(mbit: float) -> str:
    return f"{mbit / 1000:.2f}"


def _range(stats: dict, digits: int = 0) -> str:
    if not stats or stats.get("median") is None:
        return "-"
    return f"{stats['median']:.{digits}f} ({stats['min']:.{digits}f}-{stats['max']:.{digits}f}, n={stats['runs']})"


def capacity_table(data: dict) -> list[str]:
    lines = [
        "| streams | connected | failed | lossy | forwarded Gbit/s | direct, same load, Gbit/s | HAProxy CPU % "
        "| HAProxy CPU-s per Gbit | HAProxy RSS MiB | KiB per stream |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in data["steps"]:
        direct = s.get("direct_same_load") or {}
        per_gbit = s.get("haproxy_cpu_s_per_gbit")
        lines.append(
            f"| {s['streams']} | {s['connected']} | {s['failures']} | {s['lossy']} | {_gbit(s['delivered_mbit_s'])} "
            f"| {_gbit(direct['delivered_mbit_s']) + ('' if direct['ok'] else ' (lossy)') if direct else '-'} "
            f"| {s['haproxy_cpu_percent']:.0f} | {'-' if per_gbit is None else f'{per_gbit:.3f}'} "
            f"| {s['haproxy_rss_bytes'] / 2**20:.1f} | {s['haproxy_kib_per_stream']:.1f} |"
        )
    return lines


def capacity_reading(data: dict) -> list[str]:
    """What stopped the steps, from the same load sent straight to the sink."""
    failed = next((s for s in data["steps"] if not s["ok"]), None)
    per_stream = [s["haproxy_kib_per_stream"] for s in data["steps"] if s["ok"]]
    memory = (
        f"HAProxy's memory grew by {min(per_stream):.1f}-{max(per_stream):.1f} KiB per stream: buffers are "
        "taken while data is in flight and given back when it is not. "
        if per_stream
        else ""
    )
    if failed is None:
        return [memory + "No step lost data: the limit is above the largest step tried.", ""]
    direct = failed.get("direct_same_load", {})
    if direct.get("ok"):
        cause = (
            f"the same {failed['streams']} streams sent straight to the sink arrived in full, so the limit is "
            f"this machine with a balancer in the path: HAProxy used {failed['haproxy_cpu_percent']:.0f}% of a "
            "core and the bench's generators and sink the rest of the two"
        )
    else:
        cause = "the same load sent straight to the sink was lossy too, so the bench itself was the limit"
    return [f"{memory}At {failed['streams']} streams, {failed['lossy']} fell short: {cause}.", ""]


def capacity_section(data: dict) -> list[str]:
    bitrate = data["bitrate"] / 1e6
    generators = data.get("generator_processes", 1)
    sinks = data.get("sink_processes", 1)
    encoder = " (a 1080p60 encoder's bitrate)" if bitrate >= 6 else ""
    return [
        "## 4. Capacity",
        "",
        f"Steps of N concurrent streams at {bitrate:g} Mbit/s{encoder}, each a handshake, then a chunk every "
        f"100 ms, from {generators} generator processes through lb1 to the sink ({sinks} processes "
        "sharing port 1935), and then the same load straight to the sink. A stream is lossy when the sink "
        "received less than 90% of its bitrate over the measurement window. The generators and the sink are "
        "Python and share the 2 cores with HAProxy: the direct column says what the bench alone carries at "
        "each step, so a step lossy through the balancer but not direct is the balancer's (or this machine's "
        "with it) limit. The lab's frontend limit is raised to 8000 for this (bench/lab-vars.yml).",
        "",
        *capacity_table(data),
        "",
        *capacity_reading(data),
    ]


def storm_summary(data: dict | None) -> list[str]:
    if not data:
        return []
    rate = data["per_second"]
    return [
        f"- Reconnect storm: one balancer admitted {rate['check']['median']:.0f} new RTMP sessions a second with "
        f"the protocol check on, {data['check_vs_nocheck']:.2f}x the same balancer without it "
        f"({rate['nocheck']['median']:.0f}/s; target at least 0.8x); straight to nginx-rtmp "
        f"{rate['direct']['median']:.0f}/s.",
    ]


def storm_section(data: dict | None) -> list[str]:
    if not data:
        return []
    rate, cpu, failures = data["per_second"], data["haproxy_cpu_ms_per_session"], data["failures"]
    generator = data["generator"]
    names = {
        "direct": "straight to nginx-rtmp (media3)",
        "check": "lb1, protocol check on (the role's default)",
        "nocheck": "lb1, protocol check off",
    }
    lines = [
        "## 7. Reconnect storm",
        "",
        "How many new RTMP sessions a second one balancer admits, as when every encoder of a platform reconnects "
        f"at once. {generator['processes']} generator processes (bench/rtmp_load.py storm) keep "
        f"{generator['concurrency']} sessions each in flight for {data['seconds']:g} s: connect, C0+C1, "
        "S0+S1+S2 back from media3's nginx-rtmp, C2, then a reset. Abuse limits off (bench/lab-vars.yml); "
        "the three paths run in turn each round, the order flipped every round. For the check-off path the "
        "bench removes the protocol check's `tcp-request` rules from the rendered file and reloads.",
        "",
        "| path | sessions per second | failed | HAProxy CPU ms per session |",
        "|---|---|---|---|",
    ]
    for path, name in names.items():
        lines.append(
            f"| {name} | {_range(rate[path])} | {failures[path]} | {_range(cpu[path], 3) if path in cpu else '-'} |"
        )
    lines += [
        "",
        f"With the check on, lb1 admits **{data['check_vs_nocheck']:.2f}x** the sessions it admits without it "
        "(median of the per-round ratios; target at least 0.8x: "
        f"{'met' if data['check_vs_nocheck'] >= 0.8 else '**not met**'}). What the check costs: HAProxy "
        "connects to the media server only once C0+C1 are in (without the check it connects at once, while "
        "the client's first bytes are on their way), and it evaluates the rules (the CPU column). Through a "
        f"balancer the rate is {data['nocheck_vs_direct']:.2f}x direct: every session is two TCP connections "
        "and one more hop, and HAProxy, nginx-rtmp and the generators share the 2 cores.",
        "",
    ]
    return lines


BOUND_NAMES = {
    "default": "the role's defaults (`haproxy_mworker_max_reloads: 50`)",
    "lifted": "that bound lifted (no `mworker-max-reloads`)",
}


def churn_summary(data: dict | None) -> list[str]:
    if not data:
        return []
    default, lifted = data["default"], data["lifted"]
    return [
        f"- Churn: {default['runtime_operations']} runtime operations and {default['reloads']} reloads under "
        f"{default['publishers']} live publishers broke **{lifted['broken_streams']}** streams and refused "
        f"**{lifted['new_sessions']['failures']}** new sessions once the bound on reloads a worker survives is "
        f"lifted; with the role's default bound (50) they broke {default['broken_streams']}, as that bound is "
        "meant to during a reload storm.",
    ]


def churn_section(data: dict | None) -> list[str]:
    if not data:
        return []
    first = data["default"]
    lines = [
        "## 8. Churn",
        "",
        f"{first['publishers']} ffmpeg publishers push through lb1 while the collection's job runs {first['runs']} "
        "times, each run followed by a verified reload (`systemctl reload`). Besides media1..3, ten more servers "
        "(second addresses of media1..3) each change at every run: added, reweighted, removed (drained while a "
        "stream is on it), in turn, so every run is about ten runtime operations (`add server`, `set server "
        "... weight`, drain, `del server`). 4 probers open new RTMP sessions through lb1 back to back all along. "
        "Every error a prober meets counts, a reset included. The whole part runs twice:",
        "",
        "| run with | runtime operations | reloads | broken streams | publishers never cut "
        "| refused or reset new sessions | run + reload, s | HAProxy processes at the end | their RSS, MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for bound, row in data.items():
        probes = row["new_sessions"]
        lines.append(
            f"| {BOUND_NAMES.get(bound, bound)} | {row['runtime_operations']} | {row['reloads']} "
            f"| {row['broken_streams']} | {row['publishers_never_cut']} of {row['publishers']} "
            f"| {probes['failures']} of {probes['attempts']} | {_range(row['run_seconds'], 2)} "
            f"| {row['haproxy_processes_at_end']} | {row['haproxy_rss_bytes_at_end'] / 2**20:.0f} |"
        )
    lines += ["", *_churn_reading(data), ""]
    return lines


def _churn_reading(data: dict) -> list[str]:
    default, lifted = data["default"], data.get("lifted")
    text = "Target: 0 broken streams and 0 refused sessions. "
    if lifted and lifted["broken_streams"] == 0 and lifted["new_sessions"]["failures"] == 0:
        text += (
            f"With the bound lifted, {lifted['runtime_operations']} runtime operations and {lifted['reloads']} "
            "reloads cut no stream and refused no session. "
        )
    elif lifted:
        text += (
            f"With the bound lifted, {lifted['broken_streams']} streams broke and "
            f"{lifted['new_sessions']['failures']} new sessions failed ({lifted['new_sessions']['errors']}). "
        )
    if default["broken_streams"] and default["reloads"] > 50:
        text += (
            "With the role's defaults, what cuts streams is its bound on old workers: a worker that survived "
            "50 reloads is stopped with its streams (`haproxy_mworker_max_reloads`, haproxy role), so that a "
            "reload storm cannot pile up workers until memory runs out. The publishers here all sit on the "
            "first worker, which passes that bound at the 51st reload. With the runtime path, fleet changes "
            "never reload, so 50 reloads within one stream's life is a storm; raise the bound, or set 0, if "
            "your structural changes are that frequent, and watch the workers' memory."
        )
    return [text]
