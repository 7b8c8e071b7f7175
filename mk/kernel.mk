# Kernel gates: ml_lib.ko out of tree (W=1, sparse), checkpatch, KUnit under
# kunit.py, tests in a booted Debian kernel (virtme-ng).
#
#   make kernel-module       ml_lib.ko against the installed headers, W=1
#   make check-kernel-style  checkpatch.pl --strict on lib/ml and include/
#   make kunit               KUnit suite, built in, KASAN + UBSAN, QEMU
#   make check-kernel        all of the above plus sparse, the floating-point
#                            probe and the booted tests

# Debian's kernel: the newest linux-headers-*-amd64, never `uname -r`
# (the host runs another kernel). Override with KVER=... if needed.
KVER ?= $(shell ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | \
	sed 's|.*/linux-headers-||' | sort -V | tail -n 1)
KDIR ?= /lib/modules/$(KVER)/build
KSRC_TARBALL ?= $(shell ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n 1)
KSRC := $(BUILD)/linux-source
KUNIT_BUILD := $(BUILD)/kunit
KMOD := $(BUILD)/kmod
KMOD_PROXY := $(if $(wildcard lib/ml/proxy.c),y,n)
CHECKPATCH := $(KSRC)/scripts/checkpatch.pl
KERNEL_STYLE_FILES = $(wildcard lib/ml/*.c lib/ml/*.h lib/ml/ops/*.c \
	lib/ml/ops/*.h include/linux/ml_lib.h include/uapi/linux/ml_lib.h)

# Fails the recipe when a build log has a compiler or sparse warning.
define no_warnings
	@if grep -iE 'warning:|error:' $(1); then \
	  echo "$(2): the log above has warnings ($(1))"; exit 1; fi
endef

.PHONY: kernel-env kernel-src kernel-module kernel-sparse kernel-float-probe kunit-i386 \
	check-kernel-style kunit kunit-lint kernel-boot check-kernel kernel-vectors
CHECK_TARGETS += check-kernel

kernel-env:
	@test -n "$(KVER)" || { echo "kernel: no /usr/src/linux-headers-*-amd64 (make setup as root)"; exit 2; }
	@test -d $(KDIR) || { echo "kernel: $(KDIR) missing (linux-headers-$(KVER))"; exit 2; }
	@test -f /boot/vmlinuz-$(KVER) || { echo "kernel: /boot/vmlinuz-$(KVER) missing (linux-image-$(KVER))"; exit 2; }

# Debian's kernel source, extracted once (~8 s) into an ignored folder.
kernel-src: $(KSRC)/.stamp
$(KSRC)/.stamp:
	@test -n "$(KSRC_TARBALL)" || { echo "kernel: no /usr/src/linux-source-*.tar.xz (make setup as root)"; exit 2; }
	@rm -rf $(KSRC) $(BUILD)/linux-source.tmp && mkdir -p $(BUILD)/linux-source.tmp
	tar -C $(BUILD)/linux-source.tmp -xf $(KSRC_TARBALL)
	@mv $(BUILD)/linux-source.tmp/linux-source-* $(KSRC) && rmdir $(BUILD)/linux-source.tmp
	@touch $@

# Out-of-tree module, built from a copy so no object lands in lib/ml.
define kmod_sync
	@mkdir -p $(1)/lib $(1)/include
	@rsync -a --delete --exclude='*.o' --exclude='.*.cmd' lib/ml/ $(1)/lib/ml/
	@rsync -a --delete include/ $(1)/include/
endef
KMOD_MAKE = $(MAKE) -C $(KDIR) M=$(1)/lib/ml CONFIG_ML_LIB=m \
	CONFIG_ML_LIB_PROXY=$(KMOD_PROXY)

kernel-module: kernel-env
	$(call kmod_sync,$(KMOD))
	@$(call KMOD_MAKE,$(KMOD)) W=1 clean >/dev/null
	$(call KMOD_MAKE,$(KMOD)) W=1 modules 2>&1 | tee $(KMOD)/build.log; \
	  test $${PIPESTATUS[0]} = 0
	$(call no_warnings,$(KMOD)/build.log,ml_lib.ko W=1)
	@echo "kernel-module: $(KMOD)/lib/ml/ml_lib.ko built with W=1, no warnings"

# C=2 runs sparse on every file, built or not.
kernel-sparse: kernel-env
	$(call kmod_sync,$(BUILD)/kmod-sparse)
	$(call KMOD_MAKE,$(BUILD)/kmod-sparse) C=2 modules 2>&1 | \
	  tee $(BUILD)/kmod-sparse/sparse.log; test $${PIPESTATUS[0]} = 0
	$(call no_warnings,$(BUILD)/kmod-sparse/sparse.log,sparse)
	@echo "kernel-sparse: no sparse warnings"

# The kernel's flags (-mno-sse -mno-80387 ...) must reject floating point;
# prove it with a module that uses a double. A twin with an int instead must
# build, so the failure is the floating point and not a broken environment.
KFLOAT := $(BUILD)/kmod-float
kernel-float-probe: kernel-env
	@rm -rf $(KFLOAT) && mkdir -p $(KFLOAT)/int $(KFLOAT)/float
	@for t in int double; do \
	  d=$(KFLOAT)/$$( [ $$t = int ] && echo int || echo float ); \
	  printf '%s\n' '// SPDX-License-Identifier: GPL-2.0' '#include <linux/module.h>' \
	    'static volatile int fp_in = 3;' 'int fp_out;' \
	    "static int __init fp_init(void) { $$t d = fp_in; fp_out = (int)(d * 2); return 0; }" \
	    'module_init(fp_init);' 'MODULE_LICENSE("GPL");' >$$d/fp.c; \
	  echo 'obj-m += fp.o' >$$d/Kbuild; \
	done
	@$(MAKE) -C $(KDIR) M=$(KFLOAT)/int modules >$(KFLOAT)/int/build.log 2>&1 || \
	  { cat $(KFLOAT)/int/build.log; echo "kernel-float-probe: the integer twin does not build"; exit 1; }
	@if $(MAKE) -C $(KDIR) M=$(KFLOAT)/float modules >$(KFLOAT)/float/build.log 2>&1; then \
	  echo "kernel-float-probe: a module using double built: floating point is NOT rejected"; exit 1; \
	fi
	@grep -m1 -E 'error: .*SSE' $(KFLOAT)/float/build.log || \
	  { cat $(KFLOAT)/float/build.log; echo "kernel-float-probe: failed, but not on floating point"; exit 1; }
	@echo "kernel-float-probe: the integer twin builds; floating point fails the build, as it must"

check-kernel-style: kernel-src
	$(CHECKPATCH) --strict --no-tree --show-types --terse -f $(KERNEL_STYLE_FILES) \
	  >$(BUILD)/checkpatch.log 2>&1 || { cat $(BUILD)/checkpatch.log; exit 1; }
	@echo "check-kernel-style: checkpatch --strict clean on $(words $(KERNEL_STYLE_FILES)) files"

# Test vectors for KUnit, from the toolchain's Python reference.
kernel-vectors: venv
	$(PY) -m ml_lib.kernel.gen_vectors -o lib/ml/ml_lib_kunit_vectors.h

# KUnit: apply the library the way a user would, then kunit.py (QEMU TCG).
kunit: kernel-src
	scripts/apply-to-kernel.sh $(KSRC)
	cd $(KSRC) && python3 tools/testing/kunit/kunit.py run --arch=x86_64 \
	  --kunitconfig=lib/ml/.kunitconfig --build_dir=$(KUNIT_BUILD) --jobs=2 \
	  --qemu_args='-smp 2' --timeout=900 2>&1 | tee $(BUILD)/kunit.log; \
	  test $${PIPESTATUS[0]} = 0
	@grep -E 'Testing complete\. Ran [0-9]+ tests: passed: [0-9]+$$' $(BUILD)/kunit.log
	@# kunit.py parses only KTAP; sanitizer reports live in the raw console log
	@test -s $(KUNIT_BUILD)/test.log || { echo "kunit: no guest log $(KUNIT_BUILD)/test.log"; exit 1; }
	@if grep -E '\bBUG\b|KASAN:|UBSAN:|\bWARNING\b|\bOops\b|Call Trace' $(KUNIT_BUILD)/test.log; then \
	  echo "kunit: the guest kernel log above has sanitizer reports or warnings"; exit 1; fi
	@grep -q '^CONFIG_KASAN=y' $(KUNIT_BUILD)/.config && grep -q '^CONFIG_UBSAN=y' $(KUNIT_BUILD)/.config \
	  || { echo "kunit: KASAN/UBSAN not enabled in $(KUNIT_BUILD)/.config"; exit 1; }
	@n=$$(sed -nE 's/.*Testing complete\. Ran ([0-9]+) tests: passed: ([0-9]+)$$/\2/p' $(BUILD)/kunit.log); \
	  test "$${n:-0}" -ge 20 || { echo "kunit: only $${n:-0} tests passed, need >= 20"; exit 1; }

# The same suite in a 32-bit kernel (i386, UBSAN; KASAN is 64-bit only),
# with the proxy built in: proves lib/ml links without libgcc (no plain
# 64-bit division) and gives the same integers on a 32-bit ABI.
KUNIT_I386_BUILD := $(BUILD)/kunit-i386
kunit-i386: kunit
	cd $(KSRC) && python3 tools/testing/kunit/kunit.py run --arch=i386 \
	  --kunitconfig=$(TOP)/mk/kunit-i386.config --build_dir=$(KUNIT_I386_BUILD) --jobs=2 \
	  --qemu_args='-smp 2' --timeout=900 2>&1 | tee $(BUILD)/kunit-i386.log; \
	  test $${PIPESTATUS[0]} = 0
	@test -s $(KUNIT_I386_BUILD)/test.log || { echo "kunit-i386: no guest log"; exit 1; }
	@if grep -E '\bBUG\b|UBSAN:|\bWARNING\b|\bOops\b|Call Trace' $(KUNIT_I386_BUILD)/test.log; then \
	  echo "kunit-i386: the guest kernel log above has sanitizer reports or warnings"; exit 1; fi
	@grep -q '^CONFIG_X86_32=y' $(KUNIT_I386_BUILD)/.config || { echo "kunit-i386: not a 32-bit kernel"; exit 1; }
	@n=$$(sed -nE 's/.*Testing complete\. Ran ([0-9]+) tests: passed: ([0-9]+)$$/\2/p' $(BUILD)/kunit-i386.log); \
	  test "$${n:-0}" -ge 20 || { echo "kunit-i386: only $${n:-0} tests passed, need >= 20"; exit 1; }; \
	  echo "kunit-i386: $$n KUnit tests passed in a 32-bit kernel"

# The KUnit suite is kernel code too, but Debian's headers lack CONFIG_KUNIT:
# W=1 and sparse on lib/ml/ (suite included) inside the KUnit build tree.
kunit-lint: kunit
	cd $(KSRC) && $(MAKE) ARCH=x86_64 O=$(KUNIT_BUILD) W=1 C=2 lib/ml/ 2>&1 | \
	  tee $(BUILD)/kunit-lint.log; test $${PIPESTATUS[0]} = 0
	$(call no_warnings,$(BUILD)/kunit-lint.log,lib/ml in the KUnit tree (W=1, sparse))
	@echo "kunit-lint: lib/ml and its KUnit suite: W=1 and sparse clean"

# Booted Debian kernel: modules + debugfs, compared with the Python reference.
kernel-boot: kernel-env venv kernel-module
	$(PY) -m pytest -q tests/test_kernel.py $(wildcard tests/test_kernel_*.py)

check-kernel: kernel-module kernel-sparse kernel-float-probe check-kernel-style kunit kunit-lint \
	kunit-i386 kernel-boot
	@echo "check-kernel: module W=1, sparse, float probe, checkpatch, KUnit, booted tests passed"
