"""Read a test stage's log (build/logs/STAGE.log) for the console.

  stage_log.py where LOG     one line: where the stage is now (scenario, step, task or test)
  stage_log.py failure LOG   what failed: the failing assertion or fatal block with its task,
                             a failed idempotence, pytest's failures, a check's own message

Used by scripts/stage.sh: a long stage shows where it is every 30 s, and a failed one
shows its cause first rather than the cleanup that ran after it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

SCENARIO = re.compile(r"^== molecule test -s (\S+)")
# molecule 26: "INFO     [haproxy > converge] Executing" (older: "INFO     Running haproxy > converge")
MOLECULE_STEP = re.compile(r"^INFO\s+(?:Running\s+|\[)?([\w.-]+)\s+(?:➜|>)\s+(\w+)")
TASK = re.compile(r"^(TASK|RUNNING HANDLER) \[(.*)\]")
PLAY = re.compile(r"^PLAY \[(.*)\]")
PYTEST_TEST = re.compile(r"^(tests/\S+::\S+)")
MARKER = re.compile(r"^(== .*|lab: .*|lab check: .*|bench: .*|setup: .*|\S+: (ok|FAILED) \(.*)$")
FATAL = re.compile(r"^(fatal|failed): \[[^\]]+\]")
FATAL_END = re.compile(r"^(TASK|PLAY|RUNNING HANDLER) \[|^\s*$|^ok: |^changed: |^skipping: |^included: ")
MAX_BLOCK_LINES = 40


def where(lines: list[str]) -> str:
    """The innermost known position, e.g. 'haproxy > verify > TASK [Assert ...]', or the latest marker."""
    scenario = step = latest = ""
    for line in lines:
        if m := SCENARIO.match(line):
            scenario, step, latest = m.group(1), "", ""
        elif m := MOLECULE_STEP.match(line):
            scenario, step, latest = m.group(1), m.group(2), ""
        elif m := TASK.match(line):
            latest = f"{m.group(1)} [{m.group(2)}]"
        elif m := PLAY.match(line):
            latest = f"PLAY [{m.group(1)}]"
        elif (m := PYTEST_TEST.match(line)) or (m := MARKER.match(line)):
            latest = m.group(1)
    parts = [p for p in (scenario, step, latest) if p]
    if parts:
        return " > ".join(parts)
    return lines[-1].strip()[:160] if lines else "(no output yet)"


def fatal_blocks(lines: list[str]) -> list[list[str]]:
    """Ansible failures that counted: not '...ignoring', not rescued by a later success of the play."""
    blocks, task = [], ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if TASK.match(line):
            task = line.rstrip(" *")
        if FATAL.match(line):
            block = [task, line] if task else [line]
            i += 1
            while i < len(lines) and not FATAL_END.match(lines[i]) and not FATAL.match(lines[i]):
                block.append(lines[i])
                i += 1
            ignored = i < len(lines) and lines[i].strip() == "...ignoring"
            if not ignored:
                blocks.append(block[:MAX_BLOCK_LINES] + (["    ..."] if len(block) > MAX_BLOCK_LINES else []))
            continue
        i += 1
    return blocks


def section(lines: list[str], start: re.Pattern, stop: re.Pattern | None = None, limit: int = 40) -> list[str]:
    """The last section that starts at `start`, up to `stop` (exclusive) or `limit` lines."""
    found: list[str] = []
    for i, line in enumerate(lines):
        if start.search(line):
            found = []
            for follow in lines[i : i + limit]:
                if found and stop and stop.search(follow):
                    break
                found.append(follow)
    return found


def failed_sections(lines: list[str]) -> list[tuple[str, list[str]]]:
    """Each failed molecule scenario's part of the log; else the whole log as one part."""
    sections, current, begun = [], "", 0
    for i, line in enumerate(lines):
        if m := SCENARIO.match(line):
            current, begun = m.group(1), i
        elif line.startswith(f"== molecule scenario {current} FAILED"):
            sections.append((f"scenario {current}", lines[begun:i]))
    return sections or [("", lines)]


def ansible_failure(lines: list[str]) -> list[str]:
    out = section(lines, re.compile(r"Idempotence test failed"), re.compile(r"^(INFO|WARNING|ERROR|==) "), 30)
    if out:
        out.insert(0, "-- idempotence: tasks that changed on the second converge")
    blocks = fatal_blocks(lines)
    if blocks:
        # The last failure is the one that stopped the play; earlier ones may have been rescued.
        out += ["-- the failing Ansible task", *blocks[-1]]
    else:
        # No task failed: ansible-core's own error (a playbook that does not parse, a missing role).
        error = section(lines, re.compile(r"^\[ERROR\]: "), re.compile(r"^(INFO|WARNING|PLAY|TASK|==) "), 25)
        if error:
            out += ["-- Ansible's error", *error]
    return out


def failure(lines: list[str]) -> list[str]:
    out: list[str] = []
    for title, part in failed_sections(lines):
        found = ansible_failure(part)
        if found and title:
            out.append(f"== {title}")
        out += found
    summary = section(lines, re.compile(r"^=+ short test summary info =+$"), re.compile(r"^=+ .* in [0-9.]+s"), 40)
    if summary:
        errors = [line for line in lines if line.startswith("E   ")][:30]
        out += ["-- pytest", *errors, *summary]
    checks = [line for line in lines if re.match(r"^(lab check|publisher|setup|bench|test): ", line)]
    if checks:
        out += ["-- the stage's own messages (last five)", *checks[-5:]]
    if not out:
        traceback = section(lines, re.compile(r"^Traceback \(most recent call last\)"), None, 40)
        if traceback:
            out += ["-- traceback", *traceback]
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("where", "failure"):
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[1])
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    if argv[0] == "where":
        print(where(lines)[:200])
    else:
        print("\n".join(failure(lines)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
