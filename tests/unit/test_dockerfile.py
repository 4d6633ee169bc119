"""The image's Dockerfile: hadolint clean, pinned, non-root, and carrying every PostgreSQL tool the code runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    proc = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_base_is_a_pinned_slim_python_and_the_build_has_two_stages() -> None:
    ins = instructions()
    base = next(rest for word, rest in ins if word == "ARG" and rest.startswith("PYTHON_IMAGE="))
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base), base
    assert len([w for w, _ in ins if w == "FROM"]) == 2


def test_runs_as_a_numeric_non_root_user_with_healthcheck_and_entrypoint() -> None:
    ins = instructions()
    users = [rest for word, rest in ins if word == "USER"]
    assert users and users[-1].split(":")[0] in ("${SRE_UID}", "10001")
    assert any(w == "ARG" and rest == "SRE_UID=10001" for w, rest in ins)
    health = next(rest for word, rest in ins if word == "HEALTHCHECK")
    assert "/healthz" in health
    assert next(rest for word, rest in ins if word == "ENTRYPOINT") == '["sre", "serve", "--host", "0.0.0.0"]'


def pg_tools_the_code_runs() -> set[str]:
    """Names of PostgreSQL 15 programs that appear as strings in sre/ (the sandbox aside)."""
    programs = {p.name for p in PG_BIN.iterdir()}
    used: set[str] = set()
    for path in (ROOT / "sre").rglob("*.py"):
        if "sandbox" in path.parts:
            continue
        used |= programs & set(re.findall(r"[\"'/]([a-z_]+)[\"']", path.read_text()))
    return used


def test_the_image_installs_the_packages_of_every_postgresql_tool_the_code_runs() -> None:
    text = DOCKERFILE.read_text()
    used = pg_tools_the_code_runs()
    assert {"pg_dump", "pg_restore", "pg_verifybackup", "initdb", "pg_rewind"} <= used
    for tool in sorted(used):
        owner = subprocess.run(["dpkg", "-S", str(PG_BIN / tool)], capture_output=True, text=True, check=True)
        package = owner.stdout.split(":", 1)[0]
        assert re.search(rf"\b{re.escape(package)}\b", text), f"{tool} comes with {package}, which the image lacks"
    runtime_path = [r for w, r in instructions() if w == "ENV" and r.startswith("PATH=")][-1]
    assert "/usr/lib/postgresql/15/bin" in runtime_path


def test_the_image_installs_from_the_lock_and_the_lock_pins_every_dependency() -> None:
    import tomllib

    runs = [rest for word, rest in instructions() if word == "RUN" and "pip install" in rest and "--no-deps" not in rest]
    assert runs and all("-c requirements.lock" in rest for rest in runs)
    pinned = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not pinned"
            pinned[re.sub(r"[-_.]+", "-", name.lower())] = version
    wanted = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~ ]", dep, maxsplit=1)[0].lower()) for dep in wanted}
    assert names <= pinned.keys(), f"run `make lock`: {sorted(names - pinned.keys())} missing"


def test_the_image_leaves_the_sandbox_out_and_sre_up_says_so_without_it() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore.index("sre/sandbox/") > ignore.index("!sre/")
    # As in the image: the package without sre/sandbox.
    code = ("import sys; sys.modules['sre.sandbox'] = None; sys.argv = ['sre', 'up', '--port', '0']; "
            "from sre.cli import main; main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "does not include" in proc.stderr and "Traceback" not in proc.stderr
