#!/usr/bin/python
# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: haproxy_certificate
short_description: Install a TLS certificate bundle for HAProxy and rotate it in the running process, without a reload
version_added: 0.2.0
description:
  - Writes the PEM bundle (certificate, chain, private key) that a C(bind ... ssl crt) line names, and, when
    the running worker already serves a certificate from that file, hands it the new one through the runtime
    API (C(set ssl cert), then C(commit ssl cert)). No new worker starts, live RTMPS streams keep going, and
    new handshakes present the new certificate at once. Works with HAProxy 2.6 and later.
  - When the running worker serves nothing from O(path) (HAProxy is not running yet, or the C(bind) that
    names the file is part of a configuration still to be reloaded), only the file is written and
    RV(reload_required) is true; the next start or reload reads it.
  - The running worker is updated before the file, so a bundle HAProxy refuses leaves both the file and the
    served certificate as they were. The apply lock (O(lock_path)) keeps a reload from reading the file
    between the two steps.
  - The running certificate is compared by its SHA-1 fingerprint (what C(show ssl cert) prints), so a second
    run with the same bundle changes nothing.
extends_documentation_fragment:
  - rtmpedge.balancer.haproxy_runtime
  - rtmpedge.balancer.haproxy_runtime.lock
  - ansible.builtin.files
author:
  - rtmpedge maintainers (@rtmpedge)
options:
  path:
    description: The bundle's file, exactly as the configuration's C(crt) names it.
    type: path
    required: true
  content:
    description:
      - The PEM bundle; the leaf certificate first, then its chain, and one private key.
      - Empty lines are dropped (HAProxy's runtime payload ends at the first one).
    type: str
    required: true
attributes:
  check_mode:
    description: Reports whether the file or the running certificate would change, changes nothing.
    support: full
  diff_mode:
    description: Returns the running certificate's fingerprint before and after.
    support: full
notes:
  - Without O(mode), a new file is created readable by its owner only; an existing file keeps its mode.
"""

EXAMPLES = r"""
- name: Install the RTMPS certificate; a renewal reaches the running HAProxy without a reload
  rtmpedge.balancer.haproxy_certificate:
    path: /etc/haproxy/certs/rtmps.pem
    content: "{{ lookup('ansible.builtin.file', 'ingest.example.com.pem') }}"
    owner: root
    group: haproxy
    mode: "0640"
  register: rtmps_certificate

- name: Reload only when HAProxy does not serve that file yet
  ansible.builtin.command: systemctl reload haproxy
  when: rtmps_certificate.reload_required
  changed_when: true
"""

RETURN = r"""
fingerprint:
  description: The SHA-1 fingerprint of the bundle's leaf certificate (upper-case hex, as HAProxy prints it).
  returned: always
  type: str
loaded:
  description: Whether the running worker serves a certificate from O(path).
  returned: always
  type: bool
rotated:
  description: Whether the running worker was handed the new certificate through the runtime API.
  returned: always
  type: bool
reload_required:
  description: The file changed but the running worker does not serve it; a start or reload will.
  returned: always
  type: bool
running:
  description:
    - What the running worker serves from O(path) after the task (C(show ssl cert)), empty when not loaded.
  returned: always
  type: dict
  contains:
    serial:
      description: The certificate's serial number, hex.
      type: str
    not_after:
      description: The end of its validity.
      type: str
    subject:
      description: Its subject.
      type: str
    issuer:
      description: Its issuer.
      type: str
    fingerprint:
      description: Its SHA-1 fingerprint.
      type: str
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rtmpedge.balancer.plugins.module_utils import pem_bundle
from ansible_collections.rtmpedge.balancer.plugins.module_utils.apply_lock import LockBusy, locked
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_runtime import (
    RuntimeAPIError,
    replace_ssl_cert,
    ssl_cert_info,
    ssl_cert_loaded,
)
from ansible_collections.rtmpedge.balancer.plugins.module_utils.haproxy_settings import LOCK_WAIT, argument_spec


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _write(module: AnsibleModule, path: str, text: str) -> None:
    """Replace the file in one rename; the temporary file is the owner's only, as the key must be."""
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".rtmpedge-cert-")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        module.atomic_move(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _converge(module: AnsibleModule, path: str, pem: str, fingerprint: str) -> dict:
    socket_path = module.params["admin_socket"]
    loaded = os.path.exists(socket_path) and ssl_cert_loaded(socket_path, path)
    before = ssl_cert_info(socket_path, path) if loaded else {}
    rotate = loaded and before.get("fingerprint") != fingerprint
    file_changed = _read(path) != pem
    after = before
    if not module.check_mode:
        if rotate:
            replace_ssl_cert(socket_path, path, pem)
            after = ssl_cert_info(socket_path, path)
            if after.get("fingerprint") != fingerprint:
                module.fail_json(
                    msg=f"HAProxy serves {after.get('fingerprint') or 'nothing'} from {path} after the commit, "
                    f"not {fingerprint}"
                )
        if file_changed:
            _write(module, path, pem)
    return {
        "loaded": loaded,
        "rotated": rotate,
        "reload_required": file_changed and not loaded,
        "running": after,
        "changed": rotate or file_changed,
        "_before": before.get("fingerprint", ""),
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "content": {"type": "str", "required": True, "no_log": True},
            **argument_spec(),
            **argument_spec("lock_path"),
        },
        add_file_common_args=True,
        supports_check_mode=True,
    )
    path = module.params["path"]
    try:
        fingerprint = pem_bundle.leaf_fingerprint(module.params["content"])
    except pem_bundle.BundleError as e:
        module.fail_json(msg=f"content is not a certificate bundle HAProxy can serve for {path}: {e}")
    pem = pem_bundle.normalize(module.params["content"])
    if not os.path.isdir(os.path.dirname(path)):
        module.fail_json(msg=f"the directory of {path} does not exist")
    file_args = module.load_file_common_arguments(module.params)
    if file_args.get("mode") is None and not os.path.exists(path):
        file_args["mode"] = "0600"
    try:
        if module.check_mode:
            result = _converge(module, path, pem, fingerprint)
        else:
            with locked(module.params["lock_path"], LOCK_WAIT):
                result = _converge(module, path, pem, fingerprint)
    except (RuntimeAPIError, LockBusy) as e:
        module.fail_json(msg=f"Cannot rotate the certificate {path} in the running HAProxy: {e}")
    before = result.pop("_before")
    if os.path.exists(path):
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    if module._diff:
        result["diff"] = {"before": f"fingerprint: {before}\n", "after": f"fingerprint: {fingerprint}\n"}
    module.exit_json(fingerprint=fingerprint, **result)


if __name__ == "__main__":
    main()
