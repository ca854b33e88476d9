"""Part 9 of docs/benchmarks.md: scale-out on the cloud lab, from a running instance to its first stream."""

from __future__ import annotations

STEPS = (
    ("container_s", "its container runs (the hypervisor saw it in the API)"),
    ("answering_s", "nginx-rtmp answers in it"),
    ("added_s", "lb1's reconcile job added it at runtime (timer)"),
    ("up_s", "its RTMP health check passed on lb1"),
    ("first_stream_s", "the first stream through lb1 reached it"),
)


def _s(stats: dict) -> str:
    return f"{stats['median']:.1f} ({stats['min']:.1f}-{stats['max']:.1f}, n={stats['runs']})"


def cloud_summary(data: dict | None) -> list[str]:
    if not data:
        return []
    return [
        f"- Scale-out on the cloud lab: a new Auto Scaling instance took its first stream through a balancer "
        f"{data['first_stream_s']['median']:.1f} s after the API said it was running, in the median, with the "
        f"reconcile timer at its default ({data['timer']}); the timer's wait dominates.",
    ]


def cloud_section(data: dict | None) -> list[str]:
    if not data:
        return []
    return [
        "## 9. Scale-out on the cloud lab",
        "",
        "`make lab CLOUD=aws` (docs/scaling.md): the media servers are the instances of an Auto Scaling group and "
        "the tasks of an ECS service in a local moto server, each a real nginx-rtmp container. Every server holds "
        "a stream (`maxconn 1`), so a new session can only go to a new one. Each round the group grows by one; "
        "the clock starts when the API says the new instance is running (`InService`). The reconcile job runs "
        f"from its systemd timer at the role's default interval ({data['timer']}); it adds the new server through "
        "the runtime API, with no reload.",
        "",
        "| after the instance is running | seconds |",
        "|---|---|",
        *(f"| {label} | {_s(data[key])} |" for key, label in STEPS),
        "",
        "What dominates is the wait for the job's next run: uniform over the timer's interval, so its median is "
        "about half of it. The rest is the health check (`inter 2s`, `rise 2` by default) and the container's "
        "start. A shorter `reconcile_timer_interval` shortens the first; the others are the health check's "
        "settings (`haproxy_check_inter`). In AWS, an instance's own boot (minutes for EC2, tens of seconds for a "
        "Fargate task) comes before the API says it is running, and is not in these figures.",
    ]
