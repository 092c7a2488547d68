"""Pulumi components and configuration for the 'Implement LLMOps with Azure Databricks' lab."""
