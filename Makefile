# MSQ Studio. `make run` starts the dashboard, `make test` runs the whole suite; both set up .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOME_DIR ?= ./runs

.PHONY: install run demo test test-fast bench chromium fashion-mnist clean

$(VENV)/.installed: requirements.txt requirements-extras.txt requirements-nncf.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt -r requirements-extras.txt
	$(PY) -m pip install --no-deps -r requirements-nncf.txt
	# the `msq` command (pyproject.toml); setuptools is already there (torch requires it), so nothing is fetched
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	touch $@

install: $(VENV)/.installed fashion-mnist

run: install
	MSQ_HOME=$(HOME_DIR) $(PY) -m streamlit run dashboard/app.py

demo: install
	MSQ_HOME=$(HOME_DIR) $(PY) -m msq train

test: install chromium
	$(PY) -m pytest -n 2 --dist loadgroup

test-fast: install
	$(PY) -m pytest -n 2 -m "not slow and not e2e"

bench: install
	for b in overhead store msq_vs_uniform msq_vs_bsq multibit dashboard ddp onnx; do $(PY) bench/$$b.py || exit 1; done

# The browser tests drive Debian's chromium (never a downloaded browser).
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium could not be installed: the e2e tests will be skipped"

# Real Fashion-MNIST (60k/10k) from Debian's package: gzipped IDX files under /usr/share/datasets/fashion-mnist.
fashion-mnist:
	@test -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz || \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
	  || echo "dataset-fashion-mnist could not be installed: --dataset fashion-mnist needs its files (see README)"

clean:
	rm -rf $(VENV) .pytest_cache
