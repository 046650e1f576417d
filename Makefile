# Both `make demo` and `make test` set up .venv on first use, so a fresh clone
# needs nothing but Python 3.11+ and access to the package index.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean tool-definitions

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The agent tool sets pre-generated from the catalog (agent_tools/agent/tool_definitions.json, read at
# every start instead of building each model's schema): rewrite after changing a model or a tool.
# tests/test_tool_definitions.py fails while the file is stale.
tool-definitions: $(STAMP)
	$(BIN)/python -m agent_tools.agent.generate

# The demo runs a real end-to-end generation against the built-in simulator (free, offline). Every
# --simulate run keeps its books in a simulated/ folder beside the database; pointing the database
# at ./demo-output puts that folder there too.
DEMO_ENV := VIDEOGEN_DB=$(CURDIR)/demo-output/videogen.db

demo: $(STAMP)
	$(BIN)/videogen models
	$(BIN)/videogen estimate sora_2_pro_text_to_video --duration 8 --resolution 1080p
	$(DEMO_ENV) $(BIN)/videogen generate pika_image_to_video --simulate \
		--image-url examples/sunset.png --prompt "the sun sinks slowly into a calm sea, gentle waves"
	@echo "The clip above is in demo-output/simulated/media/ (open it in a browser or any video player)."

clean:
	rm -rf $(VENV) build *.egg-info demo-output
