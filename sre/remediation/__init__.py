"""Automated remediation: the alert inbox, routing to runbooks, guards, actions, verification, audit."""
