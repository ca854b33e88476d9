# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options the collection's HAProxy modules share: the sockets and backend, .config, .apply, .lock.

Written by scripts/plugin_docs.py from plugins/module_utils/haproxy_settings.py; do not edit.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  admin_socket:
    description: "HAProxy's runtime API socket (admin level)."
    type: path
    default: /run/haproxy/admin.sock
  master_socket:
    description: "The master CLI socket: reloads, and sessions counted in every worker, old ones included."
    type: path
    default: /run/haproxy/master.sock
  backend:
    description: "The backend of the media servers."
    type: str
    default: rtmp_media
"""
    CONFIG = r"""
options:
  config_path:
    description: "HAProxy's configuration file."
    type: path
    default: /etc/haproxy/haproxy.cfg
"""
    APPLY = r"""
options:
  last_good_path:
    description: "The last configuration HAProxy accepted, kept to compare and to restore."
    type: path
    default: /etc/haproxy/haproxy.cfg.last-good
  server_state_file:
    description: "Where the servers' runtime state (drain, maintenance, weights) is saved across reloads."
    type: path
    default: /var/lib/haproxy/server-state
  lock_path:
    description: "The lock that one apply at a time holds (the role's handler, the reconcile job, playbooks)."
    type: path
    default: /run/rtmpedge-reconcile.lock
"""
    LOCK = r"""
options:
  lock_path:
    description: "The lock that one apply at a time holds (the role's handler, the reconcile job, playbooks)."
    type: path
    default: /run/rtmpedge-reconcile.lock
"""
