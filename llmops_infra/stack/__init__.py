"""What ``pulumi up`` builds: the settings, one component per lab step, and the program.

Nothing here runs outside the Pulumi engine's program (the offline engine in
:mod:`llmops_infra.offline` runs the same program under mocks). The program is
:mod:`llmops_infra.stack.program`; this package imports nothing itself, so
reading the settings (:mod:`llmops_infra.stack.config`) does not load the
provider SDKs.
"""
