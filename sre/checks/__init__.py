"""Scheduled checks, each returning CheckResults (replication, backups)."""
