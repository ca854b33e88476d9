"""A converged balancer: HAProxy from Debian, running master-worker under systemd."""

from conftest import DEBIAN_HAPROXY_BRANCH


def test_haproxy_is_the_distribution_branch(host, debian_major):
    package = host.package("haproxy")
    assert package.is_installed
    assert package.version.startswith(DEBIAN_HAPROXY_BRANCH[debian_major] + ".")


def test_haproxy_service_enabled_and_running(host):
    service = host.service("haproxy")
    assert service.is_enabled
    assert service.is_running


def test_haproxy_runs_master_worker(host):
    master_pid = host.run("systemctl show -p MainPID --value haproxy").stdout.strip()
    cmdline = host.file(f"/proc/{master_pid}/cmdline").content_string.split("\0")
    assert "-Ws" in cmdline, cmdline
    workers = host.run(f"pgrep -P {master_pid} -x haproxy").stdout.split()
    assert len(workers) >= 1, "the master has no worker"
