"""Part 6 of docs/benchmarks.md: the control plane from 100 to 50,000 media servers."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# Issue #20's targets: (label, size, part, ratio key, at most).
TARGETS = (
    ("inventory plugin / yaml", "100", "inventory", "ratio", 1.2),
    ("inventory plugin / yaml", "10000", "inventory", "ratio", 1.0),
    ("inventory plugin / yaml", "50000", "inventory", "ratio", 1.0),
    ("role render + validate / floor", "10000", "render", "ratio", 1.5),
    ("reconcile no change / minimal check", "10000", "job", "ratio_no_change_to_minimal", 1.3),
    # The change against the same run without the change: a no-change run on the full path (the
    # memo settles a static fleet's no-change run without discovering; see the part's text).
    ("reconcile one added / no change on the full path", "10000", "job", "ratio_added_to_no_change_full", 2.0),
)


def _m(stats: dict) -> float:
    return stats["median"]


def _s(stats: dict, digits: int = 2) -> str:
    return f"{stats['median']:.{digits}f} ({stats['min']:.{digits}f}-{stats['max']:.{digits}f})"


def _verdict(ratio: float, limit: float) -> str:
    return "met" if ratio <= limit else "**not met**"


def growth_summary(growth: dict | None) -> list[str]:
    if not growth:
        return []
    rows = growth["by_size"]
    big = max(rows, key=int)
    ten = rows.get("10000", rows[big])
    job = rows[big]["job"]
    return [
        f"- Control plane at {int(big):,} media servers (CPU seconds of the whole process tree): "
        f"ansible-inventory {rows[big]['inventory']['ratio']:.2f}x the builtin yaml inventory; the haproxy role's "
        f"render + validate {rows[big]['render']['ratio']:.2f}x a playbook templating a static file of the same "
        f"size; the reconcile job's no-change run {_m(job['no_change']):.2f} s, one server added "
        f"{_m(job['one_added']):.2f} s with no reload ({job['ratio_added_to_no_change_full']:.1f}x a no-change run on "
        f"the full path). At 10,000: "
        f"`add server` {ten['job']['add_server']['single_p50_ms']:.1f} ms p50.",
    ]


def plot_growth(rows: dict, path: Path) -> None:
    sizes = sorted(rows, key=int)
    x = [int(n) for n in sizes]
    series = {
        "ansible-inventory, plugin": [_m(rows[n]["inventory"]["plugin"]) for n in sizes],
        "ansible-inventory, yaml": [_m(rows[n]["inventory"]["yaml"]) for n in sizes],
        "role render + validate": [_m(rows[n]["render"]["role"]) for n in sizes],
        "floor: static template + validate": [_m(rows[n]["render"]["floor"]) for n in sizes],
        "reconcile job, no change": [_m(rows[n]["job"]["no_change"]) for n in sizes],
        "reconcile job, one server added": [_m(rows[n]["job"]["one_added"]) for n in sizes],
        "haproxy -c of the whole file": [_m(rows[n]["render"]["haproxy_check"]) for n in sizes],
    }
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for label, values in series.items():
        ax.plot(x, values, marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("media servers")
    ax.set_ylabel("CPU seconds (log)")
    ax.set_title("Control plane growth (medians)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def growth_section(growth: dict | None, images: Path) -> list[str]:
    if not growth:
        return []
    rows = growth["by_size"]
    sizes = sorted(rows, key=int)
    plot_growth(rows, images / "bench-growth.png")
    lines = [
        "## 6. Control plane growth (100 to 50,000 media servers)",
        "",
        f"On this host, no lab: fleets of {', '.join(f'{int(n):,}' for n in sizes)} servers (addresses on "
        "loopback; nothing is sent to them). Figures are **CPU seconds of the whole process tree** (the command and "
        "every process it waited for: Ansible's workers, `haproxy -c`), medians with (min-max) over "
        f"{growth['runs']} paired runs ({growth.get('date', 'date not recorded')}): the two sides of a "
        "comparison run in turn, the order flipped each round, "
        "and a ratio is the median of the per-round ratios. Reproduce: `BENCH_PARTS=growth make bench` "
        f"(this run: {growth.get('seconds', 0) / 60:.0f} min).",
        "",
        "### Inventory: `ansible-inventory --list`",
        "",
        "The plugin with a static source reading a `servers_file` (plain JSON), vs the builtin yaml inventory "
        "listing the same hosts with the two contract variables (`rtmp_address`, `rtmp_port`). The plugin sets "
        "seven variables per host.",
        "",
        "| servers | plugin | yaml | ratio |",
        "|---|---|---|---|",
        *(
            f"| {int(n):,} | {_s(rows[n]['inventory']['plugin'])} | {_s(rows[n]['inventory']['yaml'])} "
            f"| {rows[n]['inventory']['ratio']:.2f} |"
            for n in sizes
        ),
        "",
        "### Render + validate: the haproxy role's preflight and template",
        "",
        "bench/render.yml (the role's preflight, then its template with the role's `validate: haproxy -c`) vs "
        "bench/render_floor.yml, the floor: the same play over the same inventory templating a static file of "
        "the same size (the role's own output) with the same validation.",
        "",
        "| servers | role | floor | ratio | `haproxy -c` alone | config |",
        "|---|---|---|---|---|---|",
        *(
            f"| {int(n):,} | {_s(rows[n]['render']['role'])} | {_s(rows[n]['render']['floor'])} "
            f"| {rows[n]['render']['ratio']:.2f} | {_s(rows[n]['render']['haproxy_check'])} "
            f"| {rows[n]['render']['config_bytes'] / 1e6:.2f} MB |"
            for n in sizes
        ),
        "",
        "### Reconcile job: no change, one server added or removed",
        "",
        "The job as the reconcile role installs it (`/usr/bin/python3`, the collection's module_utils, a static "
        "`servers_file`) against a real HAProxy 2.6 master-worker running the fleet, vs the minimal check "
        "(bench/minimal_check.py: load the same JSON, one `show servers state`, compare). With nothing to do, a "
        "static fleet's run is settled by the job's memo (its inputs hashed, one `show servers state` compared); "
        "*full path* is the same run without the memo, discovering and comparing, which is what every run pays "
        "whose source asks the network (DNS, HTTP, AWS, Docker). A one-server change goes through the runtime "
        "API (no reload); its validation checks only the new server line within the unchanged structure.",
        "",
        "| servers | no change | minimal check | ratio | no change, full path | one added | one removed "
        "| added / no change | added / full path |",
        "|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {int(n):,} | {_s(j['no_change'], 3)} | {_s(j['minimal'], 3)} "
            f"| {j['ratio_no_change_to_minimal']:.2f} | {_s(j['no_change_full'], 3)} | {_s(j['one_added'], 3)} "
            f"| {_s(j['one_removed'], 3)} | {j['ratio_added_to_no_change']:.2f} "
            f"| {j['ratio_added_to_no_change_full']:.2f} |"
            for n in sizes
            for j in [rows[n]["job"]]
        ),
        "",
        "### `add server` on the admin socket",
        "",
        "Wall latency of one `add server` per connection (as the job sends its commands), and per add when "
        "the same adds go as one batch on one connection (`;`-separated).",
        "",
        "| servers | adds | p50 ms | p99 ms | batched, ms per add |",
        "|---|---|---|---|---|",
        *(
            f"| {int(n):,} | {a['ops']} | {a['single_p50_ms']:.2f} | {a['single_p99_ms']:.2f} "
            f"| {a['batch_per_add_ms']:.2f} |"
            for n in sizes
            for a in [rows[n]["job"]["add_server"]]
        ),
        "",
        "### Targets",
        "",
        "| figure | target | measured | |",
        "|---|---|---|---|",
    ]
    for label, size, part, key, limit in TARGETS:
        if size in rows:
            ratio = rows[size][part][key]
            lines.append(f"| {label} at {int(size):,} | at most {limit:g}x | {ratio:.2f}x | {_verdict(ratio, limit)} |")
    if "50000" in rows:
        added = _m(rows["50000"]["job"]["one_added"])
        lines.append(f"| reconcile one added at 50,000 | under 5 s CPU | {added:.2f} s | {_verdict(added, 5.0)} |")
    lines += ["", "![control plane growth](img/bench-growth.png)", ""]
    return lines
