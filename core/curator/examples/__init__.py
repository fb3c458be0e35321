"""Example pipelines that run with the standard library only."""
