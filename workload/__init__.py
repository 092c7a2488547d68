"""The lab's workload: the MLflow-traced Azure OpenAI chat call and its drift monitor.

This package reads the Pulumi stack's outputs but never imports Pulumi or
``llmops_infra``: it must also run on a Databricks cluster or a laptop where
only openai and mlflow are installed.
"""
