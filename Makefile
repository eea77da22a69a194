# Two commands do all the set-up on a fresh machine:
#   make demo   # venv + install + export the embedded all-MiniLM-L6-v2 to every target, validate, bench, report
#   make test   # venv + install (+ Debian packages for the Kotlin JVM tests and the TFLite Task Library) + all tests
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
# torch first and pinned: on the reference machines this is the CPU wheel; any later resolver
# step that sees torch satisfied installs nothing more.
TORCH   ?= torch==2.13.0
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PKGS := kotlin junit4 libusb-1.0-0

.PHONY: install demo test test-python test-jvm test-mutation sysdeps tasklib-env arm64-env android-env clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/edgekit demo

sysdeps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; fi

# The TFLite Task Library needs protobuf < 4, which the main stack cannot use: its own venv.
tasklib-env: install sysdeps
	$(BIN)/python -m edgekit.targets.tflite.tasklib.env --create

# ARM64 under emulation: QEMU 10 + Debian's arm64 python3.11 + aarch64 wheels in .arm64/ (about a minute
# and 140 MB the first time; nothing when intact). Says why, and exits 0, when it cannot be had here.
arm64-env: install
	$(BIN)/python -m edgekit.emulation.env --create

# Kotlin 2.0.21 (npm) + the real API-23 android.jar (Debian) in .android-env/ for the Android compile check.
android-env:
	bash android-demo/android-env.sh

test-python: install tasklib-env arm64-env
	$(BIN)/python -m pytest -q

test-jvm: install sysdeps android-env
	bash android-demo/run-jvm-tests.sh

# Each listed mutation of the apps' Kotlin must make the JVM tests fail (a few minutes).
test-mutation: sysdeps
	bash android-demo/mutate.sh

# The iOS package (ios-demo/EdgekitQA) built and tested with Debian 13's Swift 6.0 in a Debian 13 root in
# .swift-root/ (first time 2.5-6 min, 0.65 GB download, 2.6 GB disk; about 30 s when intact). Prints
# SKIPPED and exits 0 where the host cannot (not root, no mount rights, no disk, no mirror).
# test-golden-counts: the Kotlin and the Swift tests must have replayed the same golden cases.
# test-ios-mutation, not in `test` (31 mutants, about 11 min on this shared machine): each must fail the Swift tests.
export EDGEKIT_GOLDEN_COUNTS_DIR ?= $(CURDIR)/out/golden-counts
.PHONY: test-ios test-ios-mutation test-golden-counts
test-ios:
	bash ios-demo/run-swift-tests.sh

test-ios-mutation:
	bash ios-demo/mutate.sh

test-golden-counts: test-jvm test-ios
	bash ios-demo/check-golden-counts.sh

test: test-python test-jvm test-mutation test-ios test-golden-counts

clean:
	rm -rf $(VENV) .venv-tasklib edgekit-out .pytest_cache
