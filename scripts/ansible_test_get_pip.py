"""Stand-in for ansible-test's downloaded get-pip bootstrap (its host is unreachable here).

ansible-test runs this as __main__ with pip install arguments. Bootstrap pip from
the interpreter's bundled ensurepip, then install what was asked for (pip, at the
pinned version) from the configured package index.
"""

import subprocess
import sys

UNSUPPORTED = {"--no-setuptools", "--no-wheel"}  # get-pip options plain pip rejects

args = [arg for arg in sys.argv[1:] if arg not in UNSUPPORTED]
subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
subprocess.run([sys.executable, "-m", "pip", "install", *args], check=True)
