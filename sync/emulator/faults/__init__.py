"""The fault layer: injected errors, throttling, resets, broken bodies and latency on every wire."""
