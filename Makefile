# node-dns — the two commands a new user needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TOOLS_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/node-dns/tools
export TOOLS_DIR

.PHONY: all venv ext apt tools image lint test test-fast demo bench fuzz clean

all: test

$(BIN)/.installed: pyproject.toml setup.py
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "node-dns needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(BIN)/.installed

# The compiled UDP batch (node_dns/transports/_fastudp.c and _fastkey.c), built next to its
# sources; setuptools rebuilds it only when a source is newer. Optional: without a C compiler the build warns, and
# node-dns answers with the pure-Python batch and says so at start.
ext: venv
	$(BIN)/python setup.py -q build_ext --inplace

apt:
	bash tools/apt.sh

tools:
	bash tools/build.sh

# The container image: Docker when an engine answers, else podman (--isolation=chroot); the base is
# the official Python image, or one bootstrapped from Debian packages where no registry serves it
# (PYTHON_IMAGE=debian forces that). IMAGE names the tag.
image: apt
	bash tools/image.sh $(IMAGE)

lint: venv
	$(BIN)/ruff check node_dns tests bench
	$(BIN)/ruff format --check node_dns tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: venv ext apt tools lint
	$(BIN)/pytest -q

test-fast: venv ext
	$(BIN)/pytest -q tests/unit

demo: venv ext apt tools
	$(BIN)/python -m tests.harness.demo

bench: venv ext apt tools
	$(BIN)/python -m bench

fuzz: venv
	$(BIN)/python -m tests.fuzz.run --inputs $${FUZZ_INPUTS:-1000000}

clean:
	rm -rf $(VENV) build dist *.egg-info node_dns/transports/_fastudp*.so .mypy_cache .ruff_cache .pytest_cache
