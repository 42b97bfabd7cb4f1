# The verbs people type. `make dev` runs everything locally; `make test` runs every test.
.PHONY: dev test lint fmt build deploy clean

dev:
	./scripts/dev.sh

test:
	./scripts/test.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	./scripts/setup.sh lint
	.local/venv/bin/cfn-lint template.yaml

fmt:
	cargo fmt --all

build:
	cargo build --workspace

deploy:
	./scripts/setup.sh deploy
	.local/venv/bin/sam build
	.local/venv/bin/sam deploy --guided

clean:
	cargo clean
	rm -rf .dev
