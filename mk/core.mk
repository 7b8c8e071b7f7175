# Core engine (issue 2, C side): lib/ml built for user space.
#
#   make core-lib        build/libml_lib.so (what toolchain/ml_lib/cengine.py loads)
#   make core-san        build/libml_lib_san.so, ASan + UBSan, no recovery
#   make core-kflags     every engine file compiled with kernel-like flags
#                        (-ffreestanding -nostdinc -mgeneral-regs-only ...):
#                        any floating point fails this build
#   make stack-check     worst stack of the ml_lib_run() call chain <= 512 bytes
#   make stack-check-kernel  the same on ml_lib.ko built with the kernel's flags
#   make fuzz            libFuzzer over ml_lib_blob_parse + ml_lib_run, 60 s
#   make core-be         lib/ml on big-endian s390x (clang + qemu-user):
#                        random models, generated tables, corrupted blobs
#   make check-core      all of the above plus the core pytest files
#   make bench           build/bench.json and the table for the README
#   make print-core-srcs the engine's C sources (for compiling generated C)

CORE_SRCS := $(abspath lib/ml/engine.c lib/ml/validate.c lib/ml/blob.c \
	$(sort $(wildcard lib/ml/ops/*.c)))
CORE_HDRS := include/linux/ml_lib.h lib/ml/ops.h lib/ml/ml_lib_compat.h
CORE_INC := -I$(TOP)/include -I$(TOP)/lib/ml
CORE_WARN := -Wall -Wextra -Werror -Wvla -Wshadow -Wstrict-prototypes
CORE_CFLAGS := -std=gnu11 -O2 $(CORE_WARN) $(CORE_INC)
# The kernel's x86-64 code generation: no SSE/x87 (so no floating point at
# all), no red zone, no libc, no builtins. -Wframe-larger-than matches W=1.
CORE_KFLAGS := -std=gnu11 -O2 $(CORE_WARN) -ffreestanding -nostdinc -fno-builtin \
	-mgeneral-regs-only -mno-red-zone -fno-pic -fno-strict-aliasing \
	-Wframe-larger-than=1024 -DML_LIB_FREESTANDING \
	-isystem $(shell $(CC) -print-file-name=include) \
	'-D__always_inline=inline __attribute__((__always_inline__))' $(CORE_INC)
CORE_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CORE_API := ml_lib_blob_parse ml_lib_run ml_lib_graph_free ml_lib_graph_validate \
	ml_lib_graph_write_blob
CORE_MAP := $(BUILD)/core/ml_lib.map
CORE_STACK_LIMIT ?= 512
FUZZ_SECONDS ?= 60
FUZZ_DIR := $(BUILD)/fuzz

.PHONY: core-lib core-san core-kflags stack-check stack-check-kernel fuzz fuzz-seeds check-core \
	print-core-srcs core-kflags-probe bench-core core-m32 core-be
CHECK_TARGETS += check-core
bench: bench-core

print-core-srcs:
	@echo $(CORE_SRCS)

# For tests/test_c_build.py: compile PROBE=<file.c> with the kernel-like flags.
core-kflags-probe:
	$(CC) $(CORE_KFLAGS) -c -o /dev/null $(PROBE)

# Only the public API is exported from the shared objects.
$(CORE_MAP): mk/core.mk
	@mkdir -p $(@D)
	@printf '{ global: %s; local: *; };\n' "$$(echo $(CORE_API) | sed 's/ /; /g')" >$@

core-lib: $(BUILD)/libml_lib.so
$(BUILD)/libml_lib.so: $(CORE_SRCS) $(CORE_HDRS) $(CORE_MAP)
	@mkdir -p $(@D)
	$(CC) $(CORE_CFLAGS) -fPIC -shared -Wl,--version-script=$(CORE_MAP) \
	  -o $@.tmp $(CORE_SRCS) && mv $@.tmp $@

core-san: $(BUILD)/libml_lib_san.so
$(BUILD)/libml_lib_san.so: $(CORE_SRCS) $(CORE_HDRS) $(CORE_MAP)
	@mkdir -p $(@D)
	$(CC) $(CORE_CFLAGS) -O1 -g $(CORE_SAN) -fPIC -shared \
	  -Wl,--version-script=$(CORE_MAP) -o $@.tmp $(CORE_SRCS) && mv $@.tmp $@

# Kernel-like objects, also compiled with -fstack-usage and
# -fcallgraph-info=su for the stack check (gcc writes .su and .ci files).
CORE_KOBJ_DIR := $(BUILD)/core/kflags
CORE_KOBJS := $(patsubst $(TOP)/lib/ml/%.c,$(CORE_KOBJ_DIR)/%.o,$(CORE_SRCS))
core-kflags: $(CORE_KOBJS)
$(CORE_KOBJ_DIR)/%.o: $(TOP)/lib/ml/%.c $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CORE_KFLAGS) -fstack-usage -fcallgraph-info=su -c -o $@ $<

# The same objects for i386: a 32-bit kernel has no libgcc, so a 64-bit
# division that is not div_u64() & co. (__divdi3, __udivdi3, ...) or any
# other helper call would not link there.
CORE_M32_DIR := $(BUILD)/core/m32
CORE_M32_OBJS := $(patsubst $(TOP)/lib/ml/%.c,$(CORE_M32_DIR)/%.o,$(CORE_SRCS))
core-m32: $(CORE_M32_OBJS)
	@bad=$$(nm -u $(CORE_M32_OBJS) | awk '$$1 == "U" && $$2 ~ /^__/ {print $$2}' | sort -u); \
	if [ -n "$$bad" ]; then echo "core-m32: libgcc helpers a 32-bit kernel lacks: $$bad"; exit 1; fi
	@echo "core-m32: lib/ml builds for i386 with kernel-like flags, no libgcc helpers"
$(CORE_M32_DIR)/%.o: $(TOP)/lib/ml/%.c $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CC) -m32 $(filter-out -mno-red-zone,$(CORE_KFLAGS)) -c -o $@ $<

stack-check: core-kflags
	$(PY) bench/stack_check.py --root ml_lib_run --root ml_lib_graph_validate \
	  --root ml_lib_blob_parse --limit $(CORE_STACK_LIMIT) --require ml_lib_run \
	  $(CORE_KOBJ_DIR)

# The same check on the real kernel build: ml_lib.ko out of tree against
# Debian's headers (KDIR from mk/kernel.mk), with the kernel's own flags
# (stack protector, retpolines, no SSE) plus gcc's stack and call-graph data.
CORE_KSTACK := $(BUILD)/core/kstack
stack-check-kernel:
	@rm -rf $(CORE_KSTACK) && mkdir -p $(CORE_KSTACK)/lib
	@rsync -a --exclude='*.o' --exclude='.*.cmd' lib/ml/ $(CORE_KSTACK)/lib/ml/
	@rsync -a include/ $(CORE_KSTACK)/include/
	$(MAKE) -s -C $(KDIR) M=$(CORE_KSTACK)/lib/ml CONFIG_ML_LIB=m \
	  KCFLAGS="-fstack-usage -fcallgraph-info=su" modules >$(CORE_KSTACK)/build.log 2>&1 || \
	  { cat $(CORE_KSTACK)/build.log; exit 1; }
	$(PY) bench/stack_check.py --root ml_lib_run --root ml_lib_graph_validate \
	  --root ml_lib_blob_parse --limit $(CORE_STACK_LIMIT) --require ml_lib_run \
	  $(CORE_KSTACK)/lib/ml

# libFuzzer, seeded from blobs that toolchain/ml_lib/blob.py wrote.
fuzz-seeds: $(FUZZ_DIR)/seeds/.stamp
$(FUZZ_DIR)/seeds/.stamp: tests/fuzz/make_seeds.py toolchain/ml_lib/blob.py toolchain/ml_lib/ir.py
	@rm -rf $(FUZZ_DIR)/seeds && mkdir -p $(FUZZ_DIR)/seeds
	$(PY) tests/fuzz/make_seeds.py $(FUZZ_DIR)/seeds
	@touch $@

$(FUZZ_DIR)/fuzz_blob: tests/fuzz/fuzz_blob.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(@D)
	clang -std=gnu11 -O1 -g $(CORE_WARN) -fsanitize=fuzzer,address,undefined \
	  -fno-sanitize-recover=all $(CORE_INC) -o $@ tests/fuzz/fuzz_blob.c $(CORE_SRCS)

# A fresh corpus each run (the seeds are copied), so runs are comparable.
fuzz: $(FUZZ_DIR)/fuzz_blob fuzz-seeds
	@rm -rf $(FUZZ_DIR)/corpus && mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/crashes
	@cp $(FUZZ_DIR)/seeds/*.mlb $(FUZZ_DIR)/corpus/
	$(FUZZ_DIR)/fuzz_blob -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
	  -rss_limit_mb=1024 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crashes/ \
	  $(FUZZ_DIR)/corpus 2>$(FUZZ_DIR)/fuzz.log; rc=$$?; \
	  grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' $(FUZZ_DIR)/fuzz.log; \
	  if [ $$rc != 0 ]; then tail -n 40 $(FUZZ_DIR)/fuzz.log; \
	    echo "fuzz: crash, reproducer in $(FUZZ_DIR)/crashes/"; exit 1; fi
	@echo "fuzz: $(FUZZ_SECONDS) s, no crash"

# Blobs are little-endian everywhere; this runs the loader's conversion
# and the engine on a big-endian CPU (tests/test_big_endian.py says how).
core-be: venv
	$(PY) -m pytest -q tests/test_big_endian.py

check-core: venv core-lib core-san core-kflags core-m32 core-be stack-check stack-check-kernel fuzz
	$(PY) -m pytest -q tests/test_c_build.py tests/test_blob_errors.py
	@echo "check-core: user-space, sanitizer and kernel-flag builds, stack, fuzz, tests passed"

# Benchmark: engines built with kernel-like code generation (no SSE) but
# linked as a normal program so it can time itself.
BENCH_DIR := $(BUILD)/bench
BENCH_CFLAGS := -std=gnu11 -O2 $(CORE_WARN) -mgeneral-regs-only -mno-red-zone $(CORE_INC)

$(BENCH_DIR)/bench_c: bench/bench_c.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -o $@ bench/bench_c.c $(CORE_SRCS)

bench-core: venv $(BENCH_DIR)/bench_c
	$(PY) bench/bench.py --bench-bin $(BENCH_DIR)/bench_c --out $(BUILD)/bench.json
