# report-qa: `make run` starts the chat over seeds/, `make test` runs every test. Both install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 7860

.PHONY: install run test test-fast browser stress soak bench clean

install: $(STAMP)

# torch==2.13.0 is pinned in pyproject.toml: that CPU build lies on this machine's disk; anything else pulls
# multi-GB CUDA wheels.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,ray]'
	touch $(STAMP)

# Chromium for the browser tests comes from Debian (Playwright cannot download browsers here).
browser:
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || \
	  { if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	      (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	    else echo "chromium is not installed and cannot be installed here: browser tests will be skipped"; fi; }

run: install
	$(BIN)/python app.py --host $(HOST) --port $(PORT)

test: install browser
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow and not browser and not stress"

stress: install
	$(BIN)/python -m pytest -m stress -p no:cacheprovider -s tests/stress

# 10,000 questions from 20 clients through /chat while reports are added and removed; RSS every 100 questions
# (README, "Reliability"). SOAK_QUESTIONS=1000 for a shorter run; SOAK_OUT=FILE keeps the curve as JSON.
SOAK_QUESTIONS ?= 10000
soak: install
	QA_SOAK=1 SOAK_QUESTIONS=$(SOAK_QUESTIONS) $(BIN)/python -m pytest -m stress -p no:cacheprovider -s tests/stress/test_soak.py

bench: install
	$(BIN)/qa bench

clean:
	rm -rf $(VENV) .cache build *.egg-info index/gen-* index/CURRENT index/.lock
