# syntax=docker/dockerfile:1
# The sre service image: `sre serve` as a non-root user, with the PostgreSQL 15 tools that backup
# verification and drills run (pg_dump, pg_restore, pg_basebackup, pg_rewind, pg_verifybackup,
# and initdb/pg_ctl/postgres for scratch restores). See docs/operations.md.

# The base by digest as well as tag: a tag can be pushed again, a digest names one image. Update
# both together (docker buildx imagetools inspect python:<tag> prints the index digest).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm@sha256:081075da77b2b55c23c088251026fb69a7b2bf92471e491ff5fd75c192fd38e5

# ---------------------------------------------------------------- build: the virtualenv
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
# Dependencies first, from pyproject alone, so a code change does not reinstall them; every
# version pinned by requirements.lock (`make lock` regenerates it).
COPY pyproject.toml README.md requirements.lock ./
RUN mkdir sre && touch sre/__init__.py && pip install --no-cache-dir -c requirements.lock . && pip uninstall -y sre
COPY sre ./sre
# Editable: the package stays at /app/sre, beside the content folders (alerts/, dashboards/,
# runbooks/, elk/) it loads from its parent directory.
RUN pip install --no-cache-dir --no-deps -e . && python -m compileall -q /app/sre

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE}
ARG SRE_UID=10001
ARG DEBIAN_FRONTEND=noninteractive
# Debian bookworm ships PostgreSQL 15. The package would create a "main" cluster on install:
# postgresql-common is configured first not to. Versions follow bookworm's security updates
# (rebuild to get them), hence unpinned.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-common \
 && sed -ri 's/^#?\s*create_main_cluster\s*=.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf \
 && apt-get install -y --no-install-recommends postgresql-15 postgresql-client-15 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid "${SRE_UID}" sre \
 && useradd --system --uid "${SRE_UID}" --gid sre --home-dir /var/lib/sre --create-home --shell /usr/sbin/nologin sre
ENV PATH=/opt/venv/bin:/usr/lib/postgresql/15/bin:$PATH \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --from=build /app/sre ./sre
COPY --from=build /app/pyproject.toml ./
COPY alerts ./alerts
COPY dashboards ./dashboards
COPY runbooks ./runbooks
COPY elk ./elk
USER ${SRE_UID}:${SRE_UID}
WORKDIR /var/lib/sre
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["sre", "serve", "--host", "0.0.0.0"]
CMD ["--port", "8080"]
