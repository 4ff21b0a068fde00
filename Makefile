# Two entry points: `make demo` (set up, analyse sample_images/ into out/) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test quick setup samples clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,distributed]'
	touch $@

demo: setup
	$(BIN)/skinscan demo --samples sample_images --out out

# The whole suite (what .ci/run runs): a line of progress per test file, the 15 slowest tests at the end.
test: setup
	$(BIN)/python -m pytest --durations=15

# Everyday work: everything but the end-to-end runs marked slow, in a few minutes.
quick: setup
	$(BIN)/python -m pytest -m "not slow" --durations=10

# A series of today's phantom skin, beside the committed one (which the tests' reference results are
# measured on; see sample_images/README.md): it is written to out/samples, never over sample_images/.
samples: setup
	$(BIN)/python tools/make_sample_images.py --out out/samples

clean:
	rm -rf $(VENV) out .pytest_cache build *.egg-info
