# Two entry points: `make demo` (set up, analyse sample_images/ into out/) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test setup samples clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,distributed]'
	touch $@

demo: setup
	$(BIN)/skinscan demo --samples sample_images --out out

test: setup
	$(BIN)/python -m pytest -q

samples: setup
	$(BIN)/python tools/make_sample_images.py --out sample_images

clean:
	rm -rf $(VENV) out .pytest_cache build *.egg-info
