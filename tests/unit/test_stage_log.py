"""scripts/stage_log.py: where a stage is, and what failed, read from a stage's log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import stage_log  # noqa: E402

MOLECULE_LOG = """\
== molecule test -s haproxy
INFO     [haproxy > converge] Executing
TASK [Converge with a raw line HAProxy rejects] ***
fatal: [lb1]: FAILED! =>
  msg: a failure the play rescued

TASK [Probe a port] ***
fatal: [lb1]: FAILED! => {"msg": "an ignored failure"}
...ignoring

INFO     [haproxy > verify] Executing
TASK [Assert a new worker took over while the old one keeps the live streams] ***
fatal: [lb1]: FAILED! =>
  assertion: _workers_after | difference(_workers_before) | length == 1
  msg: workers before ['1071'], after ['4035']

PLAY RECAP ***
{cleanup}
== molecule scenario haproxy FAILED after 300s
== molecule test -s transparent
INFO     [transparent > verify] Executing
TASK [A sysctl the container cannot set] ***
fatal: [lb2]: FAILED! =>
  msg: rescued in a scenario that passed
== molecule scenario transparent passed in 100s
"""


def _lines(text: str) -> list[str]:
    return text.replace("{cleanup}", "\n".join(f"INFO     cleanup line {n}" for n in range(200))).splitlines()


def test_the_failing_task_of_the_failed_scenario_is_shown_not_cleanup_or_rescued_ones():
    out = "\n".join(stage_log.failure(_lines(MOLECULE_LOG)))
    assert "== scenario haproxy" in out
    assert "TASK [Assert a new worker took over while the old one keeps the live streams]" in out
    assert "msg: workers before ['1071'], after ['4035']" in out
    assert "cleanup line" not in out
    assert "an ignored failure" not in out
    assert "rescued in a scenario that passed" not in out
    assert "scenario transparent" not in out


def test_where_names_the_scenario_step_and_task():
    log = _lines(MOLECULE_LOG)
    cut = next(i for i, line in enumerate(log) if line.startswith("  assertion:"))
    assert stage_log.where(log[:cut]) == (
        "haproxy > verify > TASK [Assert a new worker took over while the old one keeps the live streams]"
    )
    assert stage_log.where([]) == "(no output yet)"
    assert stage_log.where(["tests/unit/test_a.py::test_b PASSED", "something else"]) == "tests/unit/test_a.py::test_b"
    # After a play, the stage's own newer line is where it is.
    assert stage_log.where(["TASK [Check the rules] ***", "ok: [media1]", "lab: publishing a test stream"]) == (
        "lab: publishing a test stream"
    )


def test_an_idempotence_failure_lists_the_tasks_that_changed():
    log = [
        "== molecule test -s default",
        "CRITICAL Idempotence test failed because of the following tasks:",
        "*  => rtmpedge.balancer.haproxy : Render haproxy.cfg",
        "WARNING  An error occurred during the test sequence action: 'idempotence'. Cleaning up.",
        "== molecule scenario default FAILED after 60s",
    ]
    out = stage_log.failure(log)
    assert "*  => rtmpedge.balancer.haproxy : Render haproxy.cfg" in out
    assert out[0] == "== scenario default"


def test_pytest_failures_show_their_assertion(tmp_path):
    test = tmp_path / "test_broken.py"
    test.write_text('def test_broken():\n    assert 1 == 2, "deliberately broken"\n')
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert run.returncode == 1
    out = stage_log.failure(run.stdout.splitlines())
    assert any("AssertionError: deliberately broken" in line for line in out), out
    assert any(line.startswith("FAILED") and "test_broken" in line for line in out), out


def test_an_ansible_error_without_a_failed_task_is_shown():
    log = [
        "== molecule test -s default",
        "[ERROR]: YAML parsing failed: While parsing a flow sequence did not find expected ',' or ']'.",
        "Origin: molecule/default/verify.yml:16:23",
        "",
        "16         that: ['1071' != '1071']",
        "INFO     [default > destroy] Executing",
        "== molecule scenario default FAILED after 9s",
    ]
    out = stage_log.failure(log)
    assert "-- Ansible's error" in out
    assert "Origin: molecule/default/verify.yml:16:23" in out
    assert not any("destroy" in line for line in out)
