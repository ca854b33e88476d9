#!/usr/bin/python
# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: haproxy_apply
short_description: Apply haproxy.cfg to a running HAProxy, at runtime when only media servers changed
version_added: 0.1.0
description:
  - Compares the configuration file with the last one HAProxy applied successfully (O(last_good_path)).
  - When only the server lines of O(backend) differ, applies them through the runtime API, with no reload
    - C(add server) (same options as the C(default-server) line, checks enabled), weight, maxconn, address
    and maintenance changes. A server gone from the file is drained, and deleted once it has no session.
  - Anything else (binds, modes, timeouts, TLS, ...) is applied by a seamless reload verified on the master
    CLI. If the reload fails, the last good file is put back.
  - Refuses, changing nothing, a file without media servers (unless O(allow_empty)) or one that removes more
    than O(max_shrink) of the servers at once.
  - The same code runs in the reconcile job (role C(rtmpedge.balancer.reconcile)), under the same lock.
extends_documentation_fragment:
  - rtmpedge.balancer.haproxy_runtime
  - rtmpedge.balancer.haproxy_runtime.config
  - rtmpedge.balancer.haproxy_runtime.apply
author:
  - rtmpedge maintainers (@rtmpedge)
options:
  loaded:
    description:
      - HAProxy was (re)started with this file in the same run. Only records it as the last good one.
    type: bool
    default: false
  reload:
    description:
      - Reload even when the file did not change. After a package upgrade this runs the new binary without a
        restart - the master re-executes itself and the old workers keep their streams - and the reload is
        verified like any other.
    type: bool
    default: false
    version_added: 0.2.0
  service:
    description: The systemd unit of HAProxy.
    type: str
    default: haproxy
  allow_empty:
    description: Accept a backend without servers.
    type: bool
    default: false
  max_shrink:
    description: Largest fraction of the servers one change may remove (C(1.0) allows any scale-in).
    type: float
    default: 0.5
  lock_wait:
    description: Seconds to wait for the lock.
    type: int
    default: 60
  timeout:
    description: Seconds to wait for the master to report a reload.
    type: int
    default: 30
attributes:
  check_mode:
    description: Reports the changes and whether a reload would happen, without touching anything.
    support: full
  diff_mode:
    description: No diff is produced (the template task shows it).
    support: none
"""

EXAMPLES = r"""
- name: Apply the rendered configuration (handler of the haproxy role)
  rtmpedge.balancer.haproxy_apply:
    max_shrink: 0.5

- name: Record the configuration a fresh start just loaded
  rtmpedge.balancer.haproxy_apply:
    loaded: true

- name: Run the HAProxy binary a package upgrade installed, keeping every stream
  rtmpedge.balancer.haproxy_apply:
    reload: true
"""

RETURN = r"""
reloaded:
  description: Whether HAProxy was reloaded (a structural change, or a runtime update it refused).
  returned: always
  type: bool
reason:
  description: Why it reloaded.
  returned: always
  type: str
  sample: structural change
changes:
  description: Servers changed at runtime, by kind (add, drain, remove, weight, maxconn, address, state).
  returned: always
  type: dict
  sample: {"add": ["media-4"], "drain": ["media-1"]}
lingering:
  description: Servers removed from the file but still carrying sessions, with their session count.
  returned: always
  type: dict
  sample: {"media-1": 2}
worker_pid:
  description: PID of the new worker after a reload.
  returned: when reloaded
  type: int
old_workers:
  description: Workers of earlier configurations still alive because streams remain on them.
  returned: when reloaded
  type: list
  elements: int
"""

import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rtmpedge.balancer.plugins.module_utils.apply_lock import LockBusy, locked
from ansible_collections.rtmpedge.balancer.plugins.module_utils.backend_sync import SyncError, apply_config
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_service import ReloadError
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_settings import (
    LOCK_WAIT,
    RUNTIME_OPTIONS,
    Settings,
    argument_spec,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "loaded": {"type": "bool", "default": False},
            "reload": {"type": "bool", "default": False},
            "service": {"type": "str", "default": "haproxy"},
            "allow_empty": {"type": "bool", "default": False},
            "max_shrink": {"type": "float", "default": 0.5},
            "lock_wait": {"type": "int", "default": LOCK_WAIT},
            "timeout": {"type": "int", "default": 30},
            **argument_spec(*RUNTIME_OPTIONS, "config_path", "last_good_path", "server_state_file", "lock_path"),
        },
        supports_check_mode=True,
    )
    p = module.params
    if not 0 <= p["max_shrink"] <= 1:
        module.fail_json(msg=f"max_shrink must be between 0 and 1, got {p['max_shrink']}")
    if p["loaded"]:
        if not module.check_mode:
            shutil.copy2(p["config_path"], p["last_good_path"])
        module.exit_json(changed=False, reloaded=False, reason="", changes={}, lingering={})

    settings = Settings.from_mapping(
        {
            **p,
            "haproxy": module.get_bin_path("haproxy", required=True, opt_dirs=["/usr/sbin"]),
            "reload_timeout": p["timeout"],
        }
    )
    try:
        with open(p["config_path"]) as handle:
            candidate = handle.read()
        with locked(settings.lock_path, settings.lock_wait):
            result = apply_config(candidate, settings, check_mode=module.check_mode, force_reload=p["reload"])
    except OSError as e:
        module.fail_json(msg=f"cannot read {p['config_path']}: {e}")
    except (SyncError, LockBusy) as e:
        module.fail_json(msg=f"{e}; HAProxy keeps running its last good configuration")
    except ReloadError as e:
        module.fail_json(msg=str(e), alerts=e.alerts)
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
