# One command per chore. `make run` and `make test` work on a fresh Debian machine as root.
.PHONY: setup run test lint typecheck bench clean

PY := .venv/bin/python

setup:
	bash scripts/setup.sh

run: setup
	OPENFOAL_MODEL="$${OPENFOAL_MODEL:-}" .venv/bin/jupyter lab --allow-root --no-browser \
		--ip="$${OPENFOAL_IP:-127.0.0.1}" --port="$${OPENFOAL_PORT:-8888}" --LabApp.news_url=None

test:
	bash scripts/test.sh

lint: setup
	.venv/bin/ruff check openfoal_kernel openfoal_server_ext openfoal_testing tests benchmarks
	.venv/bin/ruff format --check openfoal_kernel openfoal_server_ext openfoal_testing tests benchmarks
	cd labextension && PATH="$(CURDIR)/.venv/bin:$$PATH" jlpm lint:check

typecheck: setup
	.venv/bin/mypy openfoal_kernel openfoal_server_ext

bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf .venv build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
