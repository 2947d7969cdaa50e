# SPDX-License-Identifier: GPL-2.0
"""The project's tools that are scripts without .py (tools/layer-check,
tools/noinstr-check), loaded as modules for their tests."""
import importlib.machinery
import importlib.util
import os

TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(name, module):
    """tools/NAME as the module MODULE."""
    loader = importlib.machinery.SourceFileLoader(module, os.path.join(TOOLS, name))
    mod = importlib.util.module_from_spec(importlib.util.spec_from_loader(module, loader))
    loader.exec_module(mod)
    return mod
