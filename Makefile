# report-qa: `make run` starts the chat over seeds/, `make test` runs every test. Both install what they need:
# `make run` the package with its [app] extra (Gradio), `make test` every extra; by default from the lock files in
# requirements/ (exact versions with hashes). `make lock` refreshes them; LOCKED=0 resolves pyproject.toml afresh.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 7860
LOCKED ?= 1
# Where torch comes from. Empty: the configured indexes (this machine has the CPU wheel 2.13.0+cpu on disk).
# Elsewhere: TORCH_INDEX=https://download.pytorch.org/whl/cpu for the CPU build (what the lock pins), or, with
# LOCKED=0, https://download.pytorch.org/whl/cu128 (or PyPI's default) for a CUDA build. docs/install.md.
TORCH_INDEX ?=
PIP_INSTALL = $(BIN)/python -m pip install -q $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
ALL_EXTRAS := app,bench,ray,test,train
LOCK_TOOLS := $(VENV)-lock

.PHONY: install install-app run test test-fast browser jemalloc stress soak bench lock python-venv clean

install: $(VENV)/.stamp-all
install-app: $(VENV)/.stamp-app

# Debian splits venv and ensurepip out of python3: say what to install, or install it when we may (root, apt).
python-venv:
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null && exit 0; \
	v=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Python $$v has no venv/ensurepip: installing python$$v-venv"; \
	  (apt-get update -qq || true); \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python$$v-venv >/dev/null || \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
	else \
	  echo "Python $$v ($(PYTHON)) has no venv/ensurepip module, which make needs to create $(VENV)." >&2; \
	  echo "  Debian/Ubuntu: sudo apt-get install python$$v-venv   (or python3-venv)" >&2; \
	  echo "  Fedora: sudo dnf install python3   |   elsewhere: a Python from python.org, or PYTHON=/path/to/python3" >&2; \
	  exit 1; \
	fi

$(BIN)/python:
	@$(MAKE) --no-print-directory python-venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# $(1): lock file, $(2): extras. The locked dependencies first (hash-checked), then this package itself, editable.
define install_from
	$(if $(filter 1,$(LOCKED)),$(PIP_INSTALL) --require-hashes -r $(1) && $(PIP_INSTALL) --no-deps -e .,\
	  $(PIP_INSTALL) -e '.[$(2)]')
endef

$(VENV)/.stamp-app: pyproject.toml requirements/app.txt | $(BIN)/python
	$(call install_from,requirements/app.txt,app)
	touch $@

$(VENV)/.stamp-all: pyproject.toml requirements/all.txt | $(BIN)/python
	$(call install_from,requirements/all.txt,$(ALL_EXTRAS))
	touch $@ $(VENV)/.stamp-app

# Refresh the lock files from pyproject.toml (newest versions its ranges allow; commit the result), with uv in its
# own venv so that it does not land in the project's. uv does not read pip's configuration: the find-links folder
# that pip is configured with (here: where the CPU torch wheel lies) is passed on, and TORCH_INDEX too.
UV_VERSION := 0.13.8
FIND_LINKS ?= $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null)
LOCK_FLAGS = --quiet --upgrade --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  $(if $(FIND_LINKS),--find-links $(FIND_LINKS)) $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
lock:
	test -x $(LOCK_TOOLS)/bin/python || $(PYTHON) -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/python -m pip install -q 'uv==$(UV_VERSION)'
	$(LOCK_TOOLS)/bin/uv pip compile pyproject.toml --extra app $(LOCK_FLAGS) -o requirements/app.txt
	$(LOCK_TOOLS)/bin/uv pip compile pyproject.toml --all-extras $(LOCK_FLAGS) -o requirements/all.txt

# Chromium for the browser tests comes from Debian (Playwright cannot download browsers here).
browser:
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || \
	  { if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	      (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 chromium >/dev/null; \
	    else echo "chromium is not installed and cannot be installed here: browser tests will be skipped"; fi; }

# jemalloc from Debian: the launcher and Ray's replicas run on it when it is there, and a server's memory stays flat
# (docs/reliability.md); without it they run on glibc's malloc and trim it every 100 questions.
jemalloc:
	@for f in /usr/lib/*-linux-gnu/libjemalloc.so.2 /usr/lib64/libjemalloc.so.2 /usr/lib/libjemalloc.so.2 \
	    /usr/local/lib/libjemalloc.so.2; do test -e "$$f" && exit 0; done; \
	  { if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	      (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 libjemalloc2 >/dev/null \
	        || echo "libjemalloc2 could not be installed: the server runs on glibc's malloc"; \
	    else echo "libjemalloc2 is not installed (apt-get install libjemalloc2): the server runs on glibc's malloc"; fi; }

run: install-app jemalloc
	$(BIN)/python app.py --host $(HOST) --port $(PORT)

test: install browser jemalloc
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow and not browser and not stress"

stress: install jemalloc
	$(BIN)/python -m pytest -m stress -p no:cacheprovider -s tests/stress

# 10,000 questions from 20 clients through /chat while reports are added and removed; RSS every 100 questions
# (docs/reliability.md). SOAK_QUESTIONS=1000 for a shorter run; SOAK_OUT=FILE keeps the curve as JSON.
SOAK_QUESTIONS ?= 10000
soak: install jemalloc
	QA_SOAK=1 SOAK_QUESTIONS=$(SOAK_QUESTIONS) $(BIN)/python -m pytest -m stress -p no:cacheprovider -s tests/stress/test_soak.py

bench: install
	$(BIN)/qa bench

clean:
	rm -rf $(VENV) $(LOCK_TOOLS) .cache build *.egg-info index/gen-* index/CURRENT index/.lock
