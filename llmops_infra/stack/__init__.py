"""What ``pulumi up`` builds: the settings, one component per lab step, and the program.

Nothing here runs outside the Pulumi engine's program (the offline engine in
:mod:`llmops_infra.offline` runs the same program under mocks).
"""

from llmops_infra.stack.program import deploy, load_config, main, name_base

__all__ = ["deploy", "load_config", "main", "name_base"]
