# Kernel gates: ml_lib.ko out of tree (W=1, sparse), checkpatch, KUnit under
# kunit.py, tests in a booted Debian kernel (virtme-ng).
#
#   make kernel-module       ml_lib.ko against the installed headers, W=1
#   make check-kernel-style  checkpatch.pl --strict on lib/ml and include/
#   make kunit               KUnit suite, built in, KASAN + UBSAN + lockdep, QEMU
#   make check-rt            the booted tests again, in Debian's PREEMPT_RT kernel
#   make check-debug-kernel  and in a kernel of ours with KASAN and lockdep (not in check)
#   make check-kernel        all of the above plus sparse, the floating-point
#                            probe and the booted tests

# Debian's kernel: the newest linux-headers-<version>-amd64, never
# `uname -r` (the host runs another kernel) and never a flavour such as
# -rt-amd64, which `make setup` installs beside it (check-rt). KVER=... or
# ML_LIB_KVER=... overrides it; the Python side (ml_lib.kernel.kernel_version)
# gets the same choice through ML_LIB_KVER.
ifneq ($(ML_LIB_KVER),)
KVER ?= $(ML_LIB_KVER)
endif
KVER ?= $(shell ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sed 's|.*/linux-headers-||' | \
	grep -E '^[0-9.]+-[0-9]+-amd64$$' | sort -V | tail -n 1)
export ML_LIB_KVER := $(KVER)
KDIR ?= /lib/modules/$(KVER)/build
KSRC_TARBALL ?= $(shell ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n 1)
KSRC := $(BUILD)/linux-source
KUNIT_BUILD := $(BUILD)/kunit
# Every case of lib/ml/ml_lib_kunit.c, parameterised ones counted per
# parameter: the gates require exactly this many to run and pass, so a
# case that silently disappears fails them. Update it with the suite.
KUNIT_TESTS := 57
# $(call kunit_count,LOG,NAME): kunit.py's summary must be "Ran N tests:
# passed: N" with N = KUNIT_TESTS.
kunit_count = @grep -qE 'Testing complete\. Ran $(KUNIT_TESTS) tests: passed: $(KUNIT_TESTS)$$' $(1) || \
	{ echo "$(2): want $(KUNIT_TESTS) tests run and passed, got: \
	$$(grep -E 'Testing complete' $(1) | tail -1)"; exit 1; }
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

.PHONY: debug-kernel check-debug-kernel kernel-env kernel-rt-env check-rt kernel-src kernel-module kernel-sparse kernel-float-probe kunit-i386 kunit-s390 \
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
# The PC's i8042 keyboard and mouse probe asynchronously and print from the
# other CPU; one such line landed inside a KTAP line and kunit.py reported
# 7 "crashed" tests although the guest log had 56/56 ok. No keyboard or
# mouse, no such line.
KUNIT_X86_ARGS := --kernel_args=i8042.nokbd --kernel_args=i8042.noaux
kunit: kernel-src
	scripts/apply-to-kernel.sh $(KSRC)
	cd $(KSRC) && python3 tools/testing/kunit/kunit.py run --arch=x86_64 $(KUNIT_X86_ARGS) \
	  --kunitconfig=lib/ml/.kunitconfig --build_dir=$(KUNIT_BUILD) --jobs=2 \
	  --qemu_args='-smp 2' --timeout=900 2>&1 | tee $(BUILD)/kunit.log; \
	  test $${PIPESTATUS[0]} = 0
	@grep -E 'Testing complete\. Ran [0-9]+ tests: passed: [0-9]+$$' $(BUILD)/kunit.log
	@# kunit.py parses only KTAP; sanitizer reports live in the raw console log
	@test -s $(KUNIT_BUILD)/test.log || { echo "kunit: no guest log $(KUNIT_BUILD)/test.log"; exit 1; }
	@if grep -E '\bBUG\b|KASAN:|UBSAN:|\bWARNING\b|\bOops\b|Call Trace' $(KUNIT_BUILD)/test.log; then \
	  echo "kunit: the guest kernel log above has sanitizer reports or warnings"; exit 1; fi
	@for c in KASAN UBSAN PROVE_LOCKING DEBUG_ATOMIC_SLEEP; do grep -q "^CONFIG_$$c=y" $(KUNIT_BUILD)/.config \
	  || { echo "kunit: CONFIG_$$c not enabled in $(KUNIT_BUILD)/.config"; exit 1; }; done
	$(call kunit_count,$(BUILD)/kunit.log,kunit)

# The same suite in another architecture's kernel (UBSAN; KASAN is not on
# every arch), with the proxy built in. $(call kunit_arch,NAME,KUNIT.PY
# ARGS,.config LINE PROVING THE ARCH,WHAT,KUNITCONFIG): the failure rules
# of `kunit`.
define kunit_arch
	cd $(KSRC) && python3 tools/testing/kunit/kunit.py run $(2) \
	  --kunitconfig=$(TOP)/$(5) --build_dir=$(BUILD)/$(1) --jobs=2 \
	  --qemu_args='-smp 2' --timeout=900 2>&1 | tee $(BUILD)/$(1).log; \
	  test $${PIPESTATUS[0]} = 0
	@test -s $(BUILD)/$(1)/test.log || { echo "$(1): no guest log"; exit 1; }
	@if grep -E '\bBUG\b|UBSAN:|\bWARNING\b|\bOops\b|Call Trace' $(BUILD)/$(1)/test.log; then \
	  echo "$(1): the guest kernel log above has sanitizer reports or warnings"; exit 1; fi
	@grep -q '^$(3)$$' $(BUILD)/$(1)/.config || { echo "$(1): $(3) missing: not $(4)"; exit 1; }
	$(call kunit_count,$(BUILD)/$(1).log,$(1))
	@echo "$(1): $(KUNIT_TESTS) KUnit tests passed in $(4)"
endef

# i386: proves lib/ml links without libgcc (no plain 64-bit division) and
# gives the same integers on a 32-bit ABI. Part of check-kernel.
kunit-i386: kunit
	$(call kunit_arch,kunit-i386,--arch=i386 $(KUNIT_X86_ARGS),CONFIG_X86_32=y,a 32-bit kernel,mk/kunit-cross.config)

# s390x: a big-endian kernel loads the little-endian blobs of the KUnit
# suite and runs the vectors. Not in check (5 to 8 min of cross build);
# make core-be runs the same loader and engine on s390x in user space.
# CC=clang with s390x binutils, as Documentation/kbuild/llvm.rst gives for
# s390 (6.1 wants clang >= 15 there): Debian's gcc-s390x-linux-gnu cannot be
# installed next to gcc-multilib.
kunit-s390: kunit
	@for t in qemu-system-s390x:qemu-system-misc clang-15:clang-15; do \
	  command -v $${t%%:*} >/dev/null || \
	  { echo "kunit-s390: $${t%%:*} missing (apt-get install $${t#*:})"; exit 2; }; done
	$(call kunit_arch,kunit-s390,--arch=s390 --cross_compile=s390x-linux-gnu- --make_options CC=clang-15,CONFIG_CPU_BIG_ENDIAN=y,a big-endian kernel,mk/kunit-s390.config)

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

# PREEMPT_RT: Debian's -rt flavour of the same kernel (spinlock_t and
# local_bh_disable() sleep, hrtimers and most IRQ handlers run in
# threads). ml_lib.ko builds with W=1 against its headers, then every
# booted test (engine through debugfs, generated model modules, every proxy
# scenario) runs in it. `make setup` installs it with the default kernel.
RT_KVER ?= $(patsubst %-amd64,%-rt-amd64,$(KVER))
kernel-rt-env: kernel-env
	@test -d /lib/modules/$(RT_KVER)/build && test -f /boot/vmlinuz-$(RT_KVER) || \
	  { echo "check-rt: linux-headers-$(RT_KVER) or linux-image-$(RT_KVER) missing (make setup as root)"; exit 2; }
	@grep -q '^CONFIG_PREEMPT_RT=y' /boot/config-$(RT_KVER) || \
	  { echo "check-rt: $(RT_KVER) is not a PREEMPT_RT kernel"; exit 1; }

check-rt: kernel-rt-env venv
	$(MAKE) kernel-module KVER=$(RT_KVER) KMOD=$(BUILD)/kmod-rt
	ML_LIB_KVER=$(RT_KVER) $(PY) -m pytest -q -m kernel tests/test_kernel.py \
	  $(wildcard tests/test_kernel_*.py) tests/test_proxy_boot.py
	@echo "check-rt: booted tests passed in $(RT_KVER) (PREEMPT_RT)"

# A debug kernel of our own: Debian's 6.1 source, virtme-ng's defconfig and
# mk/kdebug.config (KASAN, UBSAN, lockdep, sleep-in-atomic and debug-object
# checks, none of which Debian's kernels have), built in build/kdebug.
# check-debug-kernel runs every booted test and proxy scenario in it,
# through ML_LIB_KTREE (ml_lib.kernel.kernel_tree). Not in check: the
# build takes longer than all of check's other kernel work.
KDEBUG := $(BUILD)/kdebug
debug-kernel: kernel-src venv
	@mkdir -p $(KDEBUG)
	@if ! cmp -s mk/kdebug.config $(KDEBUG)/kdebug.config; then \
	  rm -f $(KDEBUG)/.config && \
	  cd $(KSRC) && $(VENV)/bin/virtme-configkernel --defconfig \
	    --custom $(TOP)/mk/kdebug.config O=$(KDEBUG) >$(KDEBUG)/config.log 2>&1 && \
	  scripts/config --file $(KDEBUG)/.config -d DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT \
	    -e DEBUG_INFO_NONE && \
	  $(MAKE) -s O=$(KDEBUG) olddefconfig && cp $(TOP)/mk/kdebug.config $(KDEBUG)/kdebug.config \
	  || { cat $(KDEBUG)/config.log; exit 1; }; fi
	@for c in $$(grep -E '^CONFIG_[A-Z0-9_]+=' mk/kdebug.config); do \
	  case $$c in *=n) grep -q "^# $${c%=n} is not set" $(KDEBUG)/.config ;; \
	  *) grep -qx "$$c" $(KDEBUG)/.config ;; esac || \
	  { echo "debug-kernel: $$c did not take in $(KDEBUG)/.config"; exit 1; }; done
	$(MAKE) -C $(KSRC) O=$(KDEBUG) -j2 -s bzImage modules
	@echo "debug-kernel: $(KDEBUG) ($$(cat $(KDEBUG)/include/config/kernel.release))"

check-debug-kernel: debug-kernel
	ML_LIB_KTREE=$(KDEBUG) $(PY) -m pytest -q -m kernel tests/test_kernel.py \
	  $(wildcard tests/test_kernel_*.py) tests/test_proxy_boot.py
	@echo "check-debug-kernel: booted tests passed under KASAN, UBSAN, lockdep and debug objects"

check-kernel: kernel-module kernel-sparse kernel-float-probe check-kernel-style kunit kunit-lint \
	kunit-i386 kernel-boot check-rt
	@echo "check-kernel: module W=1, sparse, float probe, checkpatch, KUnit, booted tests passed"
