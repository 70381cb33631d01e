"""Evaluating students: batched generation, self-evaluation, metrics, comparisons and the eval job."""
