# ml_lib top-level Makefile. `make demo` and `make check` set everything up
# themselves; each concern adds its targets from mk/<concern>.mk.
SHELL := /bin/bash
TOP := $(abspath .)
VENV := $(TOP)/.venv
# Extra pip options for torch, e.g. --index-url https://download.pytorch.org/whl/cpu
# where pip would otherwise fetch the CUDA build.
TORCH_PIP_ARGS ?=
PY := $(VENV)/bin/python
BUILD := $(TOP)/build
export PATH := $(VENV)/bin:$(PATH)
# A developer's knob that narrows a pytest run (ML_LIB_PROXY_ONLY picks
# booted proxy scenarios) never reaches a make target: `make check` runs all.
unexport ML_LIB_PROXY_ONLY

# Debian packages the whole project needs (installed by `make setup` as root).
# s390x (make core-be) is compiled by clang with s390x binutils, libgcc and
# libc: Debian's gcc-s390x-linux-gnu conflicts with gcc-multilib (-m32 gates).
APT_PACKAGES := gcc gcc-multilib make clang libclang-rt-14-dev sparse flex bison bc cpio \
	libelf-dev libssl-dev rsync kmod qemu-system-x86 busybox-static \
	linux-image-amd64 linux-headers-amd64 linux-image-rt-amd64 linux-headers-rt-amd64 \
	linux-source-6.1 xz-utils python3-venv \
	binutils-s390x-linux-gnu libgcc-12-dev-s390x-cross libc6-dev-s390x-cross qemu-user

CHECK_TARGETS :=

.PHONY: all setup apt venv check demo bench kunit clean
all: check

setup: apt venv

apt:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    echo "apt: installing $$missing"; \
	    apt-get update -q >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; \
	  fi; \
	else echo "apt: not root, assuming packages are installed"; fi

venv: $(VENV)/.stamp
$(VENV)/.stamp: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@# torch first, pinned: the CPU build on this machine's disk
	@$(PY) -c 'import torch' 2>/dev/null || $(PY) -m pip install -q $(TORCH_PIP_ARGS) torch==2.13.0
	@$(PY) -m pip install -q -e '.[test]'
	@touch $@

include $(wildcard mk/*.mk)

check: setup $(CHECK_TARGETS)
	@echo "make check: all gates passed"

clean:
	rm -rf $(BUILD)
