# imx500-sam: `make demo` (set-up + convert the bundled default model), `make test` (set-up + all tests).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH_VERSION := 2.13.0
DEMO_OUT ?= picosam3_default_imx500
STAMP     := $(VENV)/.installed-host
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: setup setup-dev java demo test lint clean bench test-deps

# Host toolchain: torch first (a CPU build where one is at hand), then the rest under constraints that hold it.
setup: $(STAMP) java

$(STAMP): pyproject.toml constraints.txt Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==$(TORCH_VERSION)
	$(PIP) install -q -c constraints.txt -e ".[convert,train]"
	@touch $@

# Test tools on top (picamera2 for its own decoding code, libarchive-c, pytest, hypothesis, ruff).
setup-dev: setup test-deps $(STAMP_DEV)

$(STAMP_DEV): $(STAMP)
	$(PIP) install -q -c constraints.txt -e ".[convert,train,dev]"
	@touch $@

# The Java minimum and its apt package are facts in imx500_sam/facts/toolchain.json (read with the system python3,
# the venv may not exist yet).
JAVA_FACTS = $(shell $(PYTHON) -c "import json; f = json.load(open('imx500_sam/facts/toolchain.json')); \
	print(f['java_min_major']['value'], f['java_apt_package']['value'])")
java:
	@set -- $(JAVA_FACTS); min=$$1; pkg=$$2; \
	if [ -z "$$pkg" ]; then echo "cannot read the Java facts from imx500_sam/facts/toolchain.json" >&2; exit 5; fi; \
	v=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1); \
	if [ -n "$$v" ] && [ "$$v" -ge "$$min" ]; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "Java $$min+ not found (imxconv-pt needs it): installing $$pkg"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkg; \
	else \
		echo "Java $$min or newer is required by imxconv-pt. Run: sudo apt-get install -y $$pkg" >&2; exit 5; \
	fi

# System packages the dev extra and the tests need: libcap-dev (pip builds python-prctl for picamera2),
# libarchive13 (libarchive-c, picamera2's .rpk reader), openssh-server/-client (flash tests on a loopback sshd),
# chromium + chromium-driver (the serve page test drives Debian's headless browser with selenium).
TEST_SYSDEPS := libcap-dev libarchive13 openssh-server openssh-client chromium chromium-driver
test-deps:
	@command -v dpkg >/dev/null || exit 0; \
	missing=$$(for p in $(TEST_SYSDEPS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "installing system packages:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
		echo "Missing system packages:" $$missing ". Run: sudo apt-get install -y" $$missing >&2; exit 5; \
	fi

demo: setup
	$(VENV)/bin/imx500-sam convert --overwrite -o $(DEMO_OUT)

test: setup-dev
	$(PY) -m pytest -q tests

lint: setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
