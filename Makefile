# The two Quick-start commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
EXTRAS ?= all,test,docs

.PHONY: demo test lint docs clean

$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m uv --version >/dev/null 2>&1 || $(VENV)/bin/python -m pip install -q uv
	$(VENV)/bin/python -m uv pip install -q --python $(VENV)/bin/python -e ".[$(EXTRAS)]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/scimlkit demo

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

docs: $(VENV)/.installed
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) site .pytest_cache
