# Both `make demo` and `make test` set up .venv on first use, so a fresh clone
# needs nothing but Python 3.11+ and access to the package index.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/videogen models
	$(BIN)/videogen estimate sora_2_pro_text_to_video --duration 8 --resolution 1080p
	$(BIN)/videogen estimate hunyuan_image_v3 --image-size '{"width": 1920, "height": 1080}' --num-images 2

clean:
	rm -rf $(VENV) build *.egg-info
