# Every target sets up .venv itself on a fresh machine (pip takes torch from the machine's wheels).
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.i2x-installed
ARGS   ?=

.PHONY: demo test bench study data install browser cypher-lint clean

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

# Every Cypher statement the code can send, checked by Neo4j's own analyser (npm @neo4j-cypher/language-support,
# installed into the git-ignored $(LINT)/node_modules). Skipped, and said so, where node or npm is missing.
LINT := tools/cypher-lint
cypher-lint: $(STAMP)
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
	  if [ ! $(LINT)/node_modules/.i2x-installed -nt $(LINT)/package-lock.json ]; then \
	    (cd $(LINT) && npm ci --no-audit --no-fund --loglevel=error) && touch $(LINT)/node_modules/.i2x-installed; \
	  fi && $(PY) $(LINT)/statements.py > $(LINT)/statements.json && node $(LINT)/lint.mjs $(LINT)/statements.json; \
	else echo "cypher-lint: SKIPPED: node and npm are not both installed, so the Cypher is not checked by Neo4j's analyser"; fi

# Fashion-MNIST for the fine-tuning study (Debian package; skipped where it is already there).
data:
	@test -d /usr/share/datasets/fashion-mnist || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	  else echo "Fashion-MNIST missing: run 'sudo apt-get install dataset-fashion-mnist'" >&2; exit 1; fi; }

demo: $(STAMP)
	$(VENV)/bin/i2x run $(ARGS)

test: $(STAMP) browser cypher-lint
	$(PY) -m pytest $(ARGS)

bench: $(STAMP)
	$(PY) bench/adapters.py
	$(PY) bench/core.py
	$(PY) bench/store.py
	$(PY) bench/graph.py
	$(PY) bench/e2e.py
	$(PY) bench/distributed.py

# The pre-registered fine-tuning study (bench/improve_plan.md): about 1.3–1.6 h on two free cores, resumable.
study: $(STAMP) data
	nice -n 10 $(PY) bench/improve.py --plan bench/improve_plan.md $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache bench/results/*.tmp $(LINT)/node_modules $(LINT)/statements.json
