# The verbs people type. `make dev` runs everything locally; `make test` runs every test.
.PHONY: dev test lint lint-template fmt build build-check deploy fuzz load capacity clean

dev:
	./scripts/dev.sh

# Every test, and the template lint (cfn-lint, sam validate --lint) before them.
test: lint-template
	./scripts/test.sh

lint: lint-template
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

lint-template:
	./scripts/deploy.sh lint

fmt:
	cargo fmt --all

# `sam build` (cargo-lambda, no Docker) for the template's architecture; ARCH=x86_64 overrides.
build:
	./scripts/deploy.sh build $(ARCH)

# `sam build` into a scratch directory and the zipped size of each function (x86_64 when
# this machine lacks the aarch64 Rust target). Not part of `make test`: about 10 minutes cold on 2 cores.
build-check:
	./scripts/deploy.sh build-check

# `sam deploy`, guided the first time (until samconfig.toml has the stack's parameters).
deploy:
	./scripts/deploy.sh deploy $(ARCH)

# cargo-fuzz over the parsers that read hostile input, FUZZ_SECONDS each (default 60);
# FUZZ_TARGETS picks some. Not part of `make test`.
fuzz:
	./scripts/fuzz.sh

# What a delivery costs DynamoDB (write/read units, calls, round trips) through the router in
# serve mode, from its own metrics (CAPACITY_DELIVERIES, default 50). Not part of `make test`.
capacity:
	./bench/capacity.sh

# The router against adnanh/webhook and @octokit/webhooks under wrk on loopback
# (LOAD_SECONDS per run, default 10). Not part of `make test`.
load:
	./bench/load.sh

clean:
	cargo clean
	rm -rf .dev .aws-sam
