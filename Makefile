# The README's two commands: `make run` and `make test`. Both set up what is missing first.
.PHONY: bootstrap run test test-quick lint bench lock

bootstrap:
	@scripts/bootstrap

run: bootstrap
	.venv/bin/sre up

lint: bootstrap
	.venv/bin/ruff check sre tests bench dashboards
	.venv/bin/mypy
	.venv/bin/lint-imports
	.venv/bin/hadolint Dockerfile
	.venv/bin/zizmor --offline --min-severity low .github/workflows/

test: lint
	.venv/bin/sre remediation test
	.venv/bin/pytest -q -n 4 --dist loadfile

test-quick: bootstrap
	.venv/bin/pytest -q -n 4 --dist loadfile -m "not slow"

bench: bootstrap
	@for b in bench/*.py; do echo "== $$b"; .venv/bin/python $$b || exit 1; done

# The image's pinned dependencies (requirements.lock, used by the Dockerfile): after a change to
# pyproject.toml's dependencies, or to take new releases.
lock: bootstrap
	scripts/lock
