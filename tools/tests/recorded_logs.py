# SPDX-License-Identifier: GPL-2.0
"""The recorded and derived console logs and plans of tools/tests/logs/ (which
is which: derive_logs.py), for derive_logs.py and the tests of tools/vmrun."""
import os

LOGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "logs")


def read(name):
    """The text of tools/tests/logs/NAME."""
    with open(os.path.join(LOGS, name)) as f:
        return f.read()
