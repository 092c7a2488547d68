"""The Pulumi program: read the stack's configuration, build the lab, export its outputs."""

from llmops_infra.stack.program import main

main()
