# SPIN Assistant: `make run` starts the assistant, `make test` runs every test.
# Both set everything up on first use; later runs redo only what changed.

SHELL := /bin/bash
PYTHON311 ?= $(shell command -v python3.11 2>/dev/null || echo python3)
APP_VENV := .venv
RASA_VENV := .venv-rasa
VAR := var
RASA_MODEL := $(VAR)/rasa-models/spin.tar.gz
NLU_INPUTS := config.yml $(shell find nlu -name '*.yml' -o -name '*.py' 2>/dev/null | grep -v -e '/tests/' -e '/test_data/' -e 'evaluate.py')
export PYTHONPATH := $(CURDIR)
export RASA_TELEMETRY_ENABLED := false
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run test setup train lint kb-index embedding-model db sample-events clean

run: setup
	$(APP_VENV)/bin/spin run

test: setup
	$(APP_VENV)/bin/python -m pytest -q

setup: $(APP_VENV)/.installed $(RASA_VENV)/.installed embedding-model $(RASA_MODEL) kb-index db sample-events

$(APP_VENV)/.installed: requirements/app.txt pyproject.toml
	@$(PYTHON311) -c 'import sys; assert sys.version_info[:2] >= (3, 11), sys.version' || \
	  { echo "error: Python 3.11 is needed for the app; set PYTHON311=/path/to/python3.11"; exit 1; }
	$(PYTHON311) -m venv $(APP_VENV)
	$(APP_VENV)/bin/pip install -q --upgrade pip==24.3.1
	# torch first, pinned to the CPU build: otherwise a dependency pulls a multi-GB CUDA build.
	$(APP_VENV)/bin/pip install -q torch==2.13.0
	$(APP_VENV)/bin/pip install -q -r requirements/app.txt
	$(APP_VENV)/bin/pip install -q --no-deps -e .
	touch $@

$(RASA_VENV)/.installed: requirements/rasa.txt
	PY310=$$(scripts/find-python310) && $$PY310 -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/pip install -q --upgrade pip==24.3.1
	$(RASA_VENV)/bin/pip install -q -r requirements/rasa.txt
	# The environment variable alone leaves telemetry on in ~/.config/rasa for later runs.
	$(RASA_VENV)/bin/rasa telemetry disable
	touch $@

embedding-model: $(APP_VENV)/.installed
	$(APP_VENV)/bin/python -m knowledge_base.embedding_model --dest $(VAR)/models/multilingual-e5-small

$(RASA_MODEL): $(RASA_VENV)/.installed $(NLU_INPUTS)
	$(MAKE) train

train: $(RASA_VENV)/.installed
	$(RASA_VENV)/bin/rasa train --config config.yml --domain nlu/domain.yml --data nlu/data \
	  --out $(VAR)/rasa-models --fixed-model-name spin

kb-index: embedding-model
	$(APP_VENV)/bin/spin kb build

db: $(APP_VENV)/.installed
	$(APP_VENV)/bin/spin db upgrade

# Sample events (marked as samples) so a new install has a catalogue to try; re-importing
# an unchanged file changes nothing.
sample-events: db
	$(APP_VENV)/bin/spin events import knowledge_base/events/samples.csv

lint: $(APP_VENV)/.installed
	$(APP_VENV)/bin/ruff check bot actions knowledge_base nlu tests
	$(APP_VENV)/bin/mypy bot actions knowledge_base

clean:
	rm -rf $(VAR)/index $(VAR)/rasa-models
