"""Commands in the project's containers (lab, molecule), through the docker CLI."""

from __future__ import annotations

import subprocess


def dexec(
    container: str, command: str, check: bool = True, input_text: str | None = None
) -> subprocess.CompletedProcess:
    """`sh -c command` in the container; with check, a non-zero exit raises naming the container."""
    flags = ["-i"] if input_text is not None else []
    result = subprocess.run(
        ["docker", "exec", *flags, container, "sh", "-c", command],
        capture_output=True,
        text=True,
        input=input_text,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"{container}: {command!r} exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    return result
