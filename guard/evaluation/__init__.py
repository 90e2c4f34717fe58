"""Evaluating a policy's detectors on labelled JSONL datasets: metrics with Wilson intervals, latency."""
