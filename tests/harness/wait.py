"""Wait for a condition, with a deadline and a message that says what was awaited."""

from __future__ import annotations

import time


class WaitTimeout(AssertionError):
    """The condition did not hold in time (an AssertionError, so pytest reports it as a failure)."""


def wait_until(predicate, seconds: float, what: str, step: float = 0.1, retry_on: tuple = ()):
    """The predicate's first truthy value; an exception in `retry_on` counts as not yet.

    Raises WaitTimeout naming `what` after `seconds`: a busy machine gets the whole deadline,
    a quick one does not wait it out.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = predicate()
        except retry_on:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {seconds:g}s waiting for {what}")
        time.sleep(step)
