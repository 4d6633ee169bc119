"""Failover drills: steps with undo, a canary writer, measurement, reports (docs/drills.md)."""
