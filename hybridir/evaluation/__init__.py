"""Evaluation: retrieval metrics and evaluation settings."""
