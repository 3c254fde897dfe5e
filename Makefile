# Every target sets up .venv itself on a fresh machine (pip takes torch from the machine's wheels).
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.i2x-installed
ARGS   ?=

.PHONY: demo test bench install browser clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# Headless Chromium for the page tests (Debian package; skipped where it is already there).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; browser tests will be skipped"; \
	  else echo "note: chromium not found; browser tests will be skipped"; fi; }

demo: $(STAMP)
	$(VENV)/bin/i2x run $(ARGS)

test: $(STAMP) browser
	$(PY) -m pytest $(ARGS)

bench: $(STAMP)
	$(PY) bench/adapters.py
	$(PY) bench/core.py
	$(PY) bench/store.py
	$(PY) bench/graph.py
	$(PY) bench/e2e.py
	$(PY) bench/distributed.py

clean:
	rm -rf $(VENV) .pytest_cache bench/results/*.tmp
