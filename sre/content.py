"""Where the content folders are: `alerts/`, `dashboards/`, `runbooks/`, `elk/` and the Helm
chart ship beside the package (the source checkout, and /app in the image), so every command
finds them whatever the working directory. Config keys override each one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sre.config import SreConfig

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def content_dir(name: str) -> Path:
    return PROJECT_ROOT / name


def alerts_dir(cfg: SreConfig) -> Path:
    return cfg.alerts.source_dir or content_dir("alerts")


def runbooks_dir(cfg: SreConfig) -> Path:
    return cfg.remediation.runbooks_dir or content_dir("runbooks")
