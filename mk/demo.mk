# Examples (models/): kernel consumers built against Debian's headers with
# W=1, and `make demo`.
#
#   make models-modules  each model's generated module and each example
#                        consumer, W=1 (consumers also sparse), zero warnings
#   make demo            export, build, boot, infer in the kernel, compare
#   make check-models    tests/test_models.py (re-export, results, W=1 builds)

MODEL_TASKS := linnos readahead anomaly
MODELS_KB := $(BUILD)/models-kbuild
# KDIR and KMOD come from mk/kernel.mk (ml_lib.ko and its Module.symvers)
MODELS_SYMVERS = $(KMOD)/lib/ml/Module.symvers

.PHONY: models-modules check-models demo
CHECK_TARGETS += check-models

# Copies keep objects out of the source tree; the layout (models/<task>/
# {export,consumer} beside include/) is the repository's, so the consumers'
# relative include paths hold.
models-modules: kernel-module
	@mkdir -p $(MODELS_KB)/models $(MODELS_KB)/include
	@rsync -a --delete include/ $(MODELS_KB)/include/
	@set -e; for t in $(MODEL_TASKS); do \
	  mkdir -p $(MODELS_KB)/models/$$t; \
	  rsync -a --delete --exclude='*.py' models/$$t/export models/$$t/consumer $(MODELS_KB)/models/$$t/; \
	  for d in export consumer; do \
	    dir=$(MODELS_KB)/models/$$t/$$d; \
	    sparse=; if [ $$d = consumer ]; then sparse=C=1; fi; \
	    $(MAKE) -s -C $(KDIR) M=$$dir W=1 $$sparse ML_LIB_INCLUDE=$(MODELS_KB)/include \
	      KBUILD_EXTRA_SYMBOLS=$(MODELS_SYMVERS) modules >$$dir/build.log 2>&1 || \
	      { cat $$dir/build.log; echo "models-modules: $$t/$$d failed"; exit 1; }; \
	    if grep -iE 'warning|error' $$dir/build.log; then \
	      echo "models-modules: $$t/$$d has warnings (W=1, sparse)"; exit 1; fi; \
	  done; \
	  echo "models-modules: $$t: $$(cd $(MODELS_KB)/models/$$t && ls export/*.ko consumer/*.ko | tr '\n' ' ')(W=1, consumer sparse, no warnings)"; \
	done

check-models: venv
	$(PY) -m pytest -q tests/test_models.py

demo: setup
	@$(PY) models/demo.py
