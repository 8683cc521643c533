"""Watching the job: Prometheus metrics, health and readiness endpoints, alerts when a human is needed.

- ``watch.observing`` wraps one run (monitor, metrics, HTTP server, alert sender);
- ``monitor`` tracks each account's health from the scheduler's hooks; ``incidents`` decides what to alert once;
- ``metrics`` and ``server`` expose it to Prometheus; ``alerts`` delivers to a webhook and a command;
- ``redact`` is the rule every operator-facing text passes through (the CLI's log filter uses it too).

Importing the package loads nothing heavy; the modules are imported where they are used.
"""
