"""What the stack costs at Azure's retail list prices: ``python -m llmops_infra cost``."""
