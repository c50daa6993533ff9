# The two commands of the README: `make demo` (the RIDE-DiVE pipeline on Fashion-MNIST-LT)
# and `make test`. Both create .venv if
# missing, install the package with its test/plot extras and make sure Fashion-MNIST is
# present before doing anything else.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FMNIST_DIR ?= /usr/share/datasets/fashion-mnist
DEMO_CONFIG ?= configs/FashionMNIST-LT/ride_dive_pipeline.yaml

.PHONY: setup data demo test benchmark clean

setup: $(VENV)/.installed

$(VENV)/.installed: setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[tests,plots]"
	@touch $@

# Debian/Ubuntu: the dataset-fashion-mnist package; elsewhere torchvision downloads it.
data: setup
	@if [ -f "$(FMNIST_DIR)/train-images-idx3-ubyte.gz" ] || [ -f datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || [ -f datasets/FashionMNIST/raw/train-images-idx3-ubyte ]; then \
		echo "Fashion-MNIST: found"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		sudo apt-get update -qq && sudo apt-get install -y -qq dataset-fashion-mnist; \
	else \
		echo "Fashion-MNIST: downloading with torchvision into datasets/"; \
		$(PY) -c "import torchvision; torchvision.datasets.FashionMNIST('datasets', download=True)"; \
	fi

demo: data
	$(PY) tools/train_net.py --config-file $(DEMO_CONFIG)

test: data
	$(PY) -m pytest tests -q

benchmark: setup
	$(PY) tools/benchmark.py

clean:
	rm -rf $(VENV) build *.egg-info
