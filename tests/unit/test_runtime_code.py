"""rtmpedge.balancer.runtime_code, run for real by ansible-playbook on this machine (local connection):
the whole runtime code in one task, byte for byte the repository's, idempotent, stale files removed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from run_module import run_module

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "plugins/module_utils"


def _install(dest: Path, check: bool = False) -> dict:
    result = run_module(dest.parent, "rtmpedge.balancer.runtime_code", {"dest": str(dest)}, check=check)
    assert not result.get("failed"), result
    return result


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*.py") if "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    dest = tmp_path_factory.mktemp("code") / "lib"
    first = _install(dest)
    return dest, first


def test_the_whole_runtime_code_is_installed_as_it_is_in_the_repository(installed):
    dest, first = installed
    root = Path(first["path"])
    assert root == dest / "ansible_collections/rtmpedge/balancer/plugins/module_utils"
    have, want = _tree(root), _tree(SOURCE)
    # Ansible ships the package's own __init__ (empty) with the code; nothing else differs.
    assert {k: v for k, v in have.items() if k != "__init__.py"} == want, (
        "installed files differ from plugins/module_utils"
    )
    assert have.get("__init__.py", b"") == b""
    assert first["changed"] and set(first["changed_files"]) == set(have)
    assert oct(os.stat(root / "reconcile.py").st_mode & 0o777) == "0o644"


def test_a_second_run_changes_nothing(installed):
    dest, _first = installed
    again = _install(dest)
    assert not again["changed"] and again["changed_files"] == []


def test_a_changed_file_is_put_back_and_a_stale_one_removed_check_mode_first(installed):
    dest, first = installed
    root = Path(first["path"])
    (root / "haproxy_runtime.py").write_text("# edited by hand\n")
    (root / "discovery" / "retired_source.py").write_text("# from an older release\n")
    dry = _install(dest, check=True)
    assert dry["changed"] and set(dry["changed_files"]) == {"haproxy_runtime.py", "discovery/retired_source.py"}
    assert (root / "discovery" / "retired_source.py").exists(), "check mode changed something"
    done = _install(dest)
    assert set(done["changed_files"]) == {"haproxy_runtime.py", "discovery/retired_source.py"}
    assert (root / "haproxy_runtime.py").read_bytes() == (SOURCE / "haproxy_runtime.py").read_bytes()
    assert not (root / "discovery" / "retired_source.py").exists()


def test_the_installed_code_runs_without_ansible(installed):
    dest, _first = installed
    for module in ("reconcile", "balancer_metrics"):
        code = f"import sys; sys.path.insert(0, {str(dest)!r}); "
        code += (
            f"from ansible_collections.rtmpedge.balancer.plugins.module_utils.{module} import main; main(['--help'])"
        )
        result = subprocess.run(["/usr/bin/python3", "-S", "-c", code], capture_output=True, text=True, check=False)
        assert result.returncode == 0 and "usage:" in result.stdout, result.stderr
