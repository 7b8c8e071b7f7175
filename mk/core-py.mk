# Core, Python side (issue 2): reference interpreter, blob writer/reader,
# validator, C code generator, random models and the differential tests
# against the C engine (build/libml_lib.so from mk/core.mk).
#
#   make check-core-py   the core Python tests (~1.5 min on 2 cores)

CORE_PY_TESTS := tests/test_reference_ops.py tests/test_blob_roundtrip.py \
	tests/test_codegen.py tests/test_differential.py

.PHONY: check-core-py
CHECK_TARGETS += check-core-py

check-core-py: venv core-lib
	$(PY) -m pytest -q -p no:cacheprovider $(CORE_PY_TESTS)
	@echo "check-core-py: reference, blob, validator, codegen and differential tests passed"
