"""The offline engine and plan: the real program under Pulumi's mocks, with no cloud.

Only :mod:`llmops_infra.offline.engine` touches Pulumi's private runtime APIs.
"""
