# SPDX-License-Identifier: GPL-2.0
"""`python3 tools/vmrun ARGS...`: the runner's command (see cli.py)."""

import os
import sys

if not __package__:
    # Run as a directory (or as this file): Python put tools/vmrun/ itself first
    # on sys.path; the package's imports need its parent, tools/, there instead.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    sys.path.insert(0, os.path.dirname(_here))

from vmrun.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
