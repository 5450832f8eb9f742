# One place for set-up: every target installs what it needs first.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
PYTEST_ARGS ?=

.PHONY: install install-system install-python test lint quickstart bench bench-smoke bench-selection bench-frontends bench-spin install-bench docker-images test-docker test-faults clean \
	install-r test-r install-k8s k8s-cluster k8s-cluster-down test-k8s \
	install-frameworks test-frameworks docker-framework-images test-frameworks-docker \
	install-ui test-ui

install: install-system install-python

install-system:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y redis-server || { $$SUDO apt-get update && $$SUDO apt-get install -y redis-server; }; }

install-python:
	$(PIP) install --quiet --disable-pip-version-check -e '.[test]'

lint: install-python
	$(PYTHON) -m ruff check .
	lint-imports
	$(PYTHON) -m mypy

test: install
	$(PYTHON) -m ruff check .
	lint-imports
	$(PYTHON) -m mypy
	$(PYTHON) -m pytest $(PYTEST_ARGS)

# Benchmarks (DESIGN.md section 5). wrk comes from Debian; bench-smoke also runs inside make test
# (tests/integration/test_bench_smoke.py), falling back to a Python client when wrk is absent.
install-bench: install
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing wrk (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y wrk || { $$SUDO apt-get update && $$SUDO apt-get install -y wrk; }; }
	$(PIP) install --quiet --disable-pip-version-check -e '.[test,bench]'

bench: install-bench
	$(PYTHON) -m benchmarks.run

bench-smoke: install-bench
	$(PYTHON) -m benchmarks.run --smoke

# The model selection layer against the paper's Figs. 7-9 (scikit-learn digits, five closure
# containers through LocalContainerManager); writes benchmarks/results/selection.json and PNGs.
bench-selection: install-bench
	$(PYTHON) -m benchmarks.selection

# One query frontend against two sharing the REST port (issue 16.3); ~4 min, writes
# benchmarks/results/frontends.json.
bench-frontends: install-bench
	$(PYTHON) -m benchmarks.frontends

# Polling on the RPC hop off against on, side by side (--rpc_spin_us / CLIPPER_RPC_SPIN_US);
# writes benchmarks/results/spin.json.
bench-spin: install-bench
	$(PYTHON) -m benchmarks.spin

# The README's first command: a local cluster (LocalContainerManager, no Docker), one Python
# function deployed and queried over HTTP, then everything stopped.
quickstart: install
	$(PYTHON) examples/basic_query/example.py

clean:
	rm -rf build *.egg-info .pytest_cache .ruff_cache .mypy_cache

# Docker: Clipper's images from dockerfiles/ (repository root as context), tagged
# clipper/<image>:<clipper_admin version>. RUN steps use the host network, which also works on
# engines without a bridge (local-engine.sh).
DOCKER_BUILD_NETWORK ?= host

docker-images: install-python
	$(PYTHON) -m clipper_admin.docker.images --network $(DOCKER_BUILD_NETWORK)

test-docker: install docker-images
	@command -v docker-compose >/dev/null 2>&1 || { \
	  echo "installing docker-compose (Debian package) for the compose tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y docker-compose || { $$SUDO apt-get update && $$SUDO apt-get install -y docker-compose; }; }
# docker-registry: a real registry on loopback for the push tests. Its package would start a
# default registry on :5000, so service starts are blocked (policy-rc.d) during the install.
	@command -v docker-registry >/dev/null 2>&1 || { \
	  echo "installing docker-registry (Debian package) for the registry push tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  NO_START=; [ -e /usr/sbin/policy-rc.d ] || { NO_START=1; printf '#!/bin/sh\nexit 101\n' | $$SUDO tee /usr/sbin/policy-rc.d >/dev/null; $$SUDO chmod 0755 /usr/sbin/policy-rc.d; }; \
	  rc=0; $$SUDO apt-get install -y docker-registry || { $$SUDO apt-get update && $$SUDO apt-get install -y docker-registry; } || rc=$$?; \
	  [ -z "$$NO_START" ] || $$SUDO rm -f /usr/sbin/policy-rc.d; \
	  exit $$rc; }
	$(PYTHON) -m pytest -m docker tests/docker $(PYTEST_ARGS)

# Faults under load against a local cluster (replica, Redis and frontend kills); prints the fault
# table and writes benchmarks/results/faults.json.
test-faults: install
	$(PYTHON) -m pytest -m faults tests/faults -s $(PYTEST_ARGS)

# R models (Rclipper, containers/R/): R and its packages from Debian only (CRAN is not needed),
# then the Rclipper package itself into R's site library.
R_DEBS = r-base-core r-cran-jsonlite r-cran-base64enc r-cran-pbdzmq r-cran-testthat

install-r:
	@missing=$$(for p in $(R_DEBS); do [ "$$(dpkg-query -W -f='$${Status}' $$p 2>/dev/null)" = "install ok installed" ] || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing R (Debian packages):" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y --no-install-recommends $$missing || { $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends $$missing; }; \
	fi
	@SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO R CMD INSTALL --no-docs containers/R/Rclipper

# R CMD check of Rclipper (its testthat unit tests included; a WARNING or NOTE fails it), then R
# through Python: the R container's RPC against our codec, the documentation's example through a
# local cluster and through Docker (the R base image is built here, host network, if missing).
test-r: install install-r docker-images
	$(PYTHON) -m clipper_admin.docker.images --network $(DOCKER_BUILD_NETWORK) r-container
	rm -rf build/rcheck && mkdir -p build/rcheck
	cd build/rcheck && R CMD build --no-build-vignettes ../../containers/R/Rclipper \
	  && _R_CHECK_FORCE_SUGGESTS_=false R CMD check --no-manual Rclipper_*.tar.gz \
	  && grep -q '^Status: OK' Rclipper.Rcheck/00check.log
	$(PYTHON) -m pytest -m r tests/r $(PYTEST_ARGS)
# Kubernetes: a real one-node cluster on loopback for tests and developers. kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet and cri-dockerd are built once with Go from the
# Go module proxy into ~/.cache/clipper-k8s/<version>-<hash>/bin (tests/k8s/cluster/build.sh);
# etcd and openssl come from Debian; pods run in the local Docker engine through cri-dockerd.
K8S_CLUSTER := tests/k8s/cluster/cluster.sh

install-k8s:
	@command -v go >/dev/null 2>&1 || { echo "Go >= 1.24 is needed to build the Kubernetes test cluster"; exit 1; }
# etcd-server's package would start a default etcd: service starts are blocked during the install.
	@missing=; for p in etcd-server openssl curl; do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; done; \
	  [ -z "$$missing" ] || { echo "installing$$missing (Debian packages)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  NO_START=; [ -e /usr/sbin/policy-rc.d ] || { NO_START=1; printf '#!/bin/sh\nexit 101\n' | $$SUDO tee /usr/sbin/policy-rc.d >/dev/null; $$SUDO chmod 0755 /usr/sbin/policy-rc.d; }; \
	  rc=0; $$SUDO apt-get install -y $$missing || { $$SUDO apt-get update && $$SUDO apt-get install -y $$missing; } || rc=$$?; \
	  [ -z "$$NO_START" ] || $$SUDO rm -f /usr/sbin/policy-rc.d; \
	  exit $$rc; }
	bash tests/k8s/cluster/build.sh

k8s-cluster: install-k8s docker-images
	bash $(K8S_CLUSTER) up

k8s-cluster-down:
	bash $(K8S_CLUSTER) down

test-k8s: install install-k8s docker-images
	$(PYTHON) -m pytest -m k8s tests/k8s $(PYTEST_ARGS)

# Framework deployers (issue 14): real PyTorch, TensorFlow, Keras, PySpark, ONNX and MXNet models
# served through LocalContainerManager. The frameworks go into virtual environments of their own,
# never the interpreter that runs make test: one for all of them but MXNet, whose last release
# needs numpy < 1.24, and one for MXNet. PySpark needs a Java runtime (Debian's OpenJDK 17).
FRAMEWORKS_VENV ?= .venv-frameworks
MXNET_VENV ?= .venv-mxnet
FRAMEWORK_EXTRAS ?= test,pytorch,tensorflow,keras,pyspark,onnx

install-frameworks: install-system
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing a Java runtime (Debian package openjdk-17-jre-headless) for PySpark"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y openjdk-17-jre-headless || { $$SUDO apt-get update && $$SUDO apt-get install -y openjdk-17-jre-headless; }; }
	[ -x $(FRAMEWORKS_VENV)/bin/python ] || $(PYTHON) -m venv $(FRAMEWORKS_VENV)
	$(FRAMEWORKS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[$(FRAMEWORK_EXTRAS)]'
	[ -x $(MXNET_VENV)/bin/python ] || $(PYTHON) -m venv $(MXNET_VENV)
	$(MXNET_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test,mxnet]'

# One pytest process per framework: TensorFlow and torch in one process abort (each bundles its
# own native libraries), as two frameworks would in one model container.
FRAMEWORK_TESTS ?= pytorch onnx tensorflow keras pyspark

test-frameworks: install-frameworks
	@set -e; for fw in $(FRAMEWORK_TESTS); do \
	  echo "== tests/frameworks/test_$$fw.py"; \
	  $(FRAMEWORKS_VENV)/bin/python -m pytest -m 'frameworks and not docker' tests/frameworks/test_$$fw.py $(PYTEST_ARGS); \
	done
	$(MXNET_VENV)/bin/python -m pytest -m 'frameworks and mxnet and not docker' tests/frameworks/test_mxnet.py $(PYTEST_ARGS)

# Built from the frameworks' environment: the images pin cloudpickle to the version of the
# interpreter that builds them, which must be the one that pickles the functions.
docker-framework-images: install-frameworks
	$(FRAMEWORKS_VENV)/bin/python -m clipper_admin.docker.images --frameworks --network $(DOCKER_BUILD_NETWORK)

test-frameworks-docker: install-frameworks docker-images docker-framework-images
	@set -e; for fw in $(FRAMEWORK_TESTS); do \
	  echo "== tests/frameworks/test_docker_frameworks.py -k $$fw"; \
	  $(FRAMEWORKS_VENV)/bin/python -m pytest -m 'frameworks and docker' tests/frameworks/test_docker_frameworks.py -k $$fw $(PYTEST_ARGS); \
	done
	$(MXNET_VENV)/bin/python -m pytest -m 'frameworks and docker and mxnet' tests/frameworks/test_mxnet.py $(PYTEST_ARGS)

# The dashboard in a real browser (issue 18.3): Debian's chromium, driven by playwright from PyPI.
# `playwright install` is never run: the test launches /usr/bin/chromium itself.
install-ui: install
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (Debian package) for the dashboard's browser test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y --no-install-recommends chromium || { $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends chromium; }; }
	$(PIP) install --quiet --disable-pip-version-check -e '.[test,ui]'

test-ui: install-ui
	$(PYTHON) -m pytest -m ui tests/ui $(PYTEST_ARGS)
