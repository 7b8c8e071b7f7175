# Front end (issue 3): mlexport / mlrun.
#
#   make check-frontend   the mlexport/mlrun tests (trained models in every
#                         input format and layer type, python == C bit for bit,
#                         one-line errors per class)
#   make check-frontend-boot  mlrun --engine kernel / proxy in a booted kernel
#                         (virtme-ng, QEMU TCG; part of make check)
#   make bench-export     bench/export_speed.py: 100k-parameter MLP, 1,000 rows
FRONTEND_TESTS := tests/test_mlexport.py tests/test_mlexport_errors.py \
	tests/test_mlexport_quant.py tests/test_mlrun.py

.PHONY: check-frontend check-frontend-boot bench-export
CHECK_TARGETS += check-frontend check-frontend-boot
bench: bench-export

check-frontend: venv
	$(PY) -m pytest -q -m "not kernel" -W ignore::DeprecationWarning $(FRONTEND_TESTS)

check-frontend-boot: venv
	$(PY) -m pytest -q -m kernel -W ignore::DeprecationWarning tests/test_mlrun.py

bench-export: venv
	$(PY) bench/export_speed.py
