"""Scoring a model: metrics, plots and explanations."""
