"""What talks to Azure Resource Manager directly, outside ``pulumi up``'s providers.

``preflight`` (quota, models and soft-deleted accounts per region, and the
region pin) and the purge of a deleted account on ``pulumi destroy``, both
through Azure's own SDK (``azure-mgmt-cognitiveservices``).
"""
