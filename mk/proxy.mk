# User-space proxy (issue 5): /dev/ml_lib, mlproxyd, booted tests.
#
# The kernel side is built from a copy of lib/ml/ in build/proxy/ so that
# objects never land in the source tree and other concerns' builds of
# lib/ml/ are not disturbed.
# Debian's newest kernel, as in mk/kernel.mk (included before this file).
PROXY_KVER ?= $(KVER)
PROXY_KDIR ?= /lib/modules/$(PROXY_KVER)/build
PROXY_BUILD := $(BUILD)/proxy
PROXY_SRCS := $(wildcard lib/ml/*.c lib/ml/*.h lib/ml/ops/*.c lib/ml/Makefile) \
	include/linux/ml_lib.h include/uapi/linux/ml_lib.h
PROXY_KO := $(PROXY_BUILD)/lib/ml/ml_lib.ko $(PROXY_BUILD)/kmod/ml_lib_proxy_test.ko
CHECKPATCH ?= /tmp/checkpatch-cache/scripts/checkpatch.pl

.PHONY: proxy-modules check-proxy check-proxy-host check-proxy-boot \
	check-proxy-style bench-proxy
CHECK_TARGETS += check-proxy
bench: bench-proxy

proxy-modules: $(PROXY_KO)

$(PROXY_KO): $(PROXY_SRCS) tests/kmod/ml_lib_proxy_test.c mk/proxy.mk
	@mkdir -p $(PROXY_BUILD)/lib $(PROXY_BUILD)/kmod
	@ln -sfn $(TOP)/include $(PROXY_BUILD)/include
	@rsync -a --delete --exclude='*.o' --exclude='*.ko' --exclude='.*.cmd' \
		lib/ml/ $(PROXY_BUILD)/lib/ml/
	$(MAKE) -s -C $(PROXY_KDIR) M=$(PROXY_BUILD)/lib/ml W=1 \
		CONFIG_ML_LIB=m CONFIG_ML_LIB_PROXY=y modules 2>&1 | tee $(PROXY_BUILD)/build.log; \
		test $${PIPESTATUS[0]} = 0
	@cp tests/kmod/ml_lib_proxy_test.c $(PROXY_BUILD)/kmod/
	@printf 'obj-m := ml_lib_proxy_test.o\nccflags-y += -I$(TOP)/include\n' \
		> $(PROXY_BUILD)/kmod/Kbuild
	$(MAKE) -s -C $(PROXY_KDIR) M=$(PROXY_BUILD)/kmod W=1 \
		KBUILD_EXTRA_SYMBOLS=$(PROXY_BUILD)/lib/ml/Module.symvers modules \
		2>&1 | tee -a $(PROXY_BUILD)/build.log; test $${PIPESTATUS[0]} = 0
	@test -f $(word 1,$(PROXY_KO)) && test -f $(word 2,$(PROXY_KO))
	@! grep -E 'proxy[a-z_]*\.[ch]:[0-9]+:[0-9]+: (warning|error)|^ERROR' $(PROXY_BUILD)/build.log

# W=1 and sparse (C=2) on the proxy's C, checkpatch --strict on its files.
# Both builds must succeed and sparse must really have checked proxy.c
# (C=2 rechecks every file; kbuild prints "CHECK" for each one it checks).
check-proxy-style: $(PROXY_KO)
	$(MAKE) -C $(PROXY_KDIR) M=$(PROXY_BUILD)/lib/ml W=1 C=2 \
		CONFIG_ML_LIB=m CONFIG_ML_LIB_PROXY=y modules >$(PROXY_BUILD)/sparse-full.log 2>&1 \
		|| { cat $(PROXY_BUILD)/sparse-full.log; exit 1; }
	$(MAKE) -C $(PROXY_KDIR) M=$(PROXY_BUILD)/kmod W=1 C=2 \
		KBUILD_EXTRA_SYMBOLS=$(PROXY_BUILD)/lib/ml/Module.symvers modules \
		>>$(PROXY_BUILD)/sparse-full.log 2>&1 || { cat $(PROXY_BUILD)/sparse-full.log; exit 1; }
	@grep -qE 'CHECK .*/proxy\.c$$' $(PROXY_BUILD)/sparse-full.log && \
	  grep -qE 'CHECK .*/ml_lib_proxy_test\.c$$' $(PROXY_BUILD)/sparse-full.log || \
	  { echo "check-proxy-style: sparse did not check the proxy sources"; exit 1; }
	@grep -E 'proxy[a-z_]*\.[ch]:' $(PROXY_BUILD)/sparse-full.log >$(PROXY_BUILD)/sparse.log; \
	  if [ -s $(PROXY_BUILD)/sparse.log ]; then cat $(PROXY_BUILD)/sparse.log; exit 1; fi
	@if [ ! -x $(CHECKPATCH) ]; then \
	  mkdir -p $(BUILD)/checkpatch && tar -C $(BUILD)/checkpatch --strip-components=1 \
	    -xf /usr/src/linux-source-6.1.tar.xz linux-source-6.1/scripts && \
	  tar -C $(BUILD)/checkpatch --strip-components=1 -xf /usr/src/linux-source-6.1.tar.xz \
	    linux-source-6.1/scripts/spelling.txt linux-source-6.1/scripts/const_structs.checkpatch; \
	fi; \
	cp=$(CHECKPATCH); [ -x $$cp ] || cp=$(BUILD)/checkpatch/scripts/checkpatch.pl; \
	$$cp --strict --no-tree -q -f lib/ml/proxy.c lib/ml/proxy.h \
		include/uapi/linux/ml_lib.h tests/kmod/ml_lib_proxy_test.c

check-proxy-host: venv
	$(PY) -m pytest -q tests/test_proxy.py

check-proxy-boot: venv $(PROXY_KO)
	$(PY) -m pytest -q -m kernel tests/test_proxy_boot.py

check-proxy: check-proxy-host check-proxy-style check-proxy-boot

bench-proxy: $(PROXY_KO)
	$(PY) bench/proxy_bench.py --out $(PROXY_BUILD)/bench.json
