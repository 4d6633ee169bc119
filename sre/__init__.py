"""sre: observability and SRE automation for the messaging platform."""

__version__ = "0.1.0"
