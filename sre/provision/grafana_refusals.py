"""What Grafana refuses, by version, and the one-line outcome sre reports for each object.

Kept apart from the plan/apply flow in `grafana.py` so that each refusal reads as one rule.
"""

from __future__ import annotations

from sre.adapters.grafana import GrafanaError

REFUSED = "refused: "  # a change the plan refuses before any request; apply reports it as failed
PROVISIONED = "provisioned from files in Grafana: left alone (change it where it is provisioned)"
ROOT_FOLDER_NAME = "General"  # Grafana's name for the root level; no folder may take it


def release(version: str | None) -> tuple[int, int] | None:
    """(major, minor) of a Grafana version string such as "11.2.0" or "12.0.1+security-01"."""
    if not version:
        return None
    parts = version.split("+")[0].split("-")[0].split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return None


def titles_unique(version: str | None) -> bool:
    """Whether the server keeps one dashboard per title in a folder (up to 11.2; unknown: assume so)."""
    found = release(version)
    return found is None or found < (11, 3)


def describe_forbidden(exc: GrafanaError, folder: str, folder_uid: str) -> str:
    where = f"folder {folder} ({folder_uid})" if folder_uid else "the root folder"
    return f"{exc}: the permissions of {where} do not let sre's account write there"


def overwrote_other(answered_uid: str, title: str, folder: str) -> str:
    return (f"Grafana overwrote dashboard {answered_uid} instead (it holds the title {title!r} in {folder}, and "
            f"Grafana up to 11.2 saves by title): restore {answered_uid} from its version history and rename one "
            "of them")


def reserved_folder_name(title: str) -> bool:
    return title.strip().lower() == ROOT_FOLDER_NAME.lower()


def is_provisioned_refusal(exc: GrafanaError) -> bool:
    """400 "Cannot save provisioned dashboard" / "provisioned dashboard cannot be deleted"."""
    return exc.status == 400 and "provisioned dashboard" in str(exc).lower()


def explain_refusal(exc: Exception, creating: bool) -> str:
    """Grafana's refusal, with what to do where its own words do not say."""
    body = getattr(exc, "body", None)
    status = body.get("status") if isinstance(body, dict) else None
    message_id = body.get("messageId") if isinstance(body, dict) else None
    if creating and status == "version-mismatch":
        return f"{exc}: someone created this uid in Grafana since the plan; run plan again to see it"
    if message_id == "folder.maximum-depth-reached":
        return f"{exc}: Grafana nests folders 8 levels deep (4 from Grafana 12); flatten the directory tree"
    return str(exc)
