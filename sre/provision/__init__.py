"""Desired state -> live system, one module per target. All share the Plan shape in plan.py."""
