# syncd — build, test, lint, bench.
#
# Tools the tests and benchmarks need are installed here, pinned, into a
# cache outside the work tree (reused across clones) and linked into ./bin.

SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
TOOLS ?= $(HOME)/.cache/syncd-tools

RESTIC_VERSION := v0.18.1
AGE_VERSION := v1.3.1
STATICCHECK_VERSION := v0.7.0
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
SYNCTHING_VERSION := v1.30.0

export PATH := $(BIN):$(PATH)
export SYNCD_TEST_BIN := $(BIN)

.PHONY: all build demo test test-unit lint fuzz bench tools zstd-cli chromium prometheus clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# The main job on local defaults: snapshot a sample tree, list it, restore it.
demo: build
	./scripts/demo.sh

# Every test: unit tests with the race detector, then the end-to-end tests
# against the built binaries and the real tools.
test: tools build
	$(GO) test -race -count=1 -timeout 15m ./...

lint: $(BIN)/staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt: $$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/staticcheck ./...

FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench: tools build $(BIN)/syncthing $(BIN)/rsync
	$(GO) run ./bench/cmd/bench -bin $(BIN) -out docs/BENCHMARKS.md

# rsync, the mirroring anchor, pinned at the version of the figures in
# docs/BENCHMARKS.md: Debian's package moved from 3.2.7 to 3.5.0 (slower
# here) on 2026-12-04. Extracted from Debian's package, not installed.
RSYNC_DEB_VERSION ?= 3.2.7-1+deb12u6
$(BIN)/rsync: Makefile
	@mkdir -p $(BIN) $(TOOLS)/rsync@$(RSYNC_DEB_VERSION)
	@set -e; d=$(TOOLS)/rsync@$(RSYNC_DEB_VERSION); \
	if [ ! -x $$d/usr/bin/rsync ]; then \
	  echo "fetching Debian's rsync $(RSYNC_DEB_VERSION)"; \
	  (cd $$d && apt-get download rsync=$(RSYNC_DEB_VERSION) && dpkg -x rsync_*.deb . && rm -f rsync_*.deb); \
	fi
	@ln -sf $(TOOLS)/rsync@$(RSYNC_DEB_VERSION)/usr/bin/rsync $(BIN)/rsync

tools: $(BIN)/age $(BIN)/restic $(BIN)/minio zstd-cli chromium prometheus

# go-tool installs a Go command pinned at a version into $(TOOLS)/<name>@<version>
# and links it into ./bin. $(1)=name $(2)=package $(3)=version
define go-tool
$(BIN)/$(1): Makefile
	@mkdir -p $(BIN) $(TOOLS)/$(1)@$(3)
	@if [ ! -x $(TOOLS)/$(1)@$(3)/$(1) ]; then \
	  echo "installing $(2)@$(3)"; \
	  GOBIN=$(TOOLS)/$(1)@$(3) $(GO) install $(2)@$(3); \
	fi
	@ln -sf $(TOOLS)/$(1)@$(3)/$(1) $(BIN)/$(1)
endef

$(eval $(call go-tool,restic,github.com/restic/restic/cmd/restic,$(RESTIC_VERSION)))
$(eval $(call go-tool,staticcheck,honnef.co/go/tools/cmd/staticcheck,$(STATICCHECK_VERSION)))
$(eval $(call go-tool,minio,github.com/minio/minio,$(MINIO_VERSION)))

# Syncthing is the second mirroring anchor (the bench's syncthing section;
# the tests do not need it). Its module has a replace directive, so `go
# install …@version` refuses it: the module is downloaded, its directory
# copied out of the read-only module cache, the GUI assets generated and
# the command built, as its release build does, into the tools cache.
$(BIN)/syncthing: Makefile
	@mkdir -p $(BIN) $(TOOLS)/syncthing@$(SYNCTHING_VERSION)
	@set -e; d=$(TOOLS)/syncthing@$(SYNCTHING_VERSION); \
	if [ ! -x $$d/syncthing ]; then \
	  echo "building github.com/syncthing/syncthing@$(SYNCTHING_VERSION)"; \
	  mod=$$(cd $$d && $(GO) mod download -json github.com/syncthing/syncthing@$(SYNCTHING_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$$/\1/p'); \
	  test -d "$$mod" || { echo "go mod download gave no module directory"; exit 1; }; \
	  rm -rf $$d/src; cp -r $$mod $$d/src; chmod -R u+w $$d/src; \
	  (cd $$d/src && $(GO) generate ./lib/api/auto && \
	   $(GO) build -trimpath -ldflags "-X github.com/syncthing/syncthing/lib/build.Version=$(SYNCTHING_VERSION)" -o $$d/syncthing.tmp ./cmd/syncthing); \
	  mv $$d/syncthing.tmp $$d/syncthing; rm -rf $$d/src; \
	fi
	@ln -sf $(TOOLS)/syncthing@$(SYNCTHING_VERSION)/syncthing $(BIN)/syncthing

$(BIN)/age: Makefile
	@mkdir -p $(BIN) $(TOOLS)/age@$(AGE_VERSION)
	@if [ ! -x $(TOOLS)/age@$(AGE_VERSION)/age ]; then \
	  echo "installing filippo.io/age@$(AGE_VERSION)"; \
	  GOBIN=$(TOOLS)/age@$(AGE_VERSION) $(GO) install filippo.io/age/cmd/age@$(AGE_VERSION) filippo.io/age/cmd/age-keygen@$(AGE_VERSION); \
	fi
	@ln -sf $(TOOLS)/age@$(AGE_VERSION)/age $(BIN)/age
	@ln -sf $(TOOLS)/age@$(AGE_VERSION)/age-keygen $(BIN)/age-keygen

# The zstd CLI comes from Debian (FORMAT.md's recovery path uses it).
zstd-cli:
	@command -v zstd >/dev/null || { apt-get update -qq && apt-get install -y -qq zstd >/dev/null; }

# Headless chromium comes from Debian: e2e/page_test.go drives it with
# chromedp to test the status page.
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

# promtool and prometheus come from Debian: e2e/prometheus_rules_test.go
# runs promtool on deploy/prometheus/, e2e/prometheus_test.go a real
# Prometheus. The package may start its own service; the tests start theirs.
prometheus:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

# bin/NAME works as well as $(BIN)/NAME on the command line.
bin/%: $(BIN)/% ;

clean:
	rm -rf $(BIN)
