"""Measuring what a model makes: fidelity to the prompt."""
