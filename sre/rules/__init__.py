"""Prometheus alert rules and SLOs as code: load, render, lint and test the `alerts/` tree."""
