"""Evaluation of a prompt set: the dataset, the judges and the scoring run."""
