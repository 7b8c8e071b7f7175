# Front end (issue 3): mlexport / mlrun.
#
#   make check-frontend   the mlexport/mlrun tests (trained models in every
#                         input format and layer type, python == C bit for bit,
#                         one-line errors per class)
#   make bench-export     bench/export_speed.py: 100k-parameter MLP, 1,000 rows
FRONTEND_TESTS := tests/test_mlexport.py tests/test_mlexport_errors.py tests/test_mlrun.py

.PHONY: check-frontend bench-export
CHECK_TARGETS += check-frontend
bench: bench-export

check-frontend: venv
	$(PY) -m pytest -q -m "not kernel" -W ignore::DeprecationWarning $(FRONTEND_TESTS)

bench-export: venv
	$(PY) bench/export_speed.py
