# Copyright: rtmpedge maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one lock every apply holds (the haproxy role's handler, the reconcile job, playbooks).

Its own module, standard library only: the reconcile job takes it before it knows whether
it has anything to do, and a run with nothing to do should import nothing heavier.
"""

from __future__ import annotations

import contextlib
import fcntl
import time


class LockBusy(Exception):
    """Another apply held the lock longer than this one would wait."""


@contextlib.contextmanager
def locked(path: str, wait: float):
    """Hold an exclusive lock; raise LockBusy when another run keeps it longer than `wait` seconds."""
    handle = open(path, "a")  # noqa: SIM115 - closed in finally
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as e:
                if time.monotonic() >= deadline:
                    raise LockBusy(f"another reconcile run holds {path}; gave up after {wait:g}s") from e
                time.sleep(0.1)
        yield
    finally:
        handle.close()
