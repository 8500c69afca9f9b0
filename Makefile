# Postfach make targets. `make test` is the one command that runs every test.

GO ?= go

# Tuned for a 2-core CI machine: two test binaries at a time (-p 2) and up to
# four parallel tests inside each, since most tests wait on sockets, real mail
# peers or the database rather than the CPU. -timeout guards one package
# binary against a hang; the whole suite runs twice well inside 90 minutes.
GOTESTFLAGS ?= -p 2 -parallel 4 -timeout 20m

.PHONY: test test-postgres

# go vet, the suite on SQLite, then the suite again on PostgreSQL when
# POSTFACH_TEST_POSTGRES is set. Every step runs even when an earlier one
# failed, so one CI run reports all failures; the exit status is non-zero if
# any step failed. Packages that do not read POSTFACH_TEST_POSTGRES are not
# rerun: go test's cache knows their result does not depend on it.
test:
	@failed=""; \
	echo "==> go vet ./..."; \
	$(GO) vet ./... || failed="$$failed vet"; \
	echo "==> go test ./... on SQLite"; \
	env -u POSTFACH_TEST_POSTGRES $(GO) test $(GOTESTFLAGS) ./... || failed="$$failed sqlite"; \
	if [ -n "$$POSTFACH_TEST_POSTGRES" ]; then \
		$(MAKE) --no-print-directory test-postgres || failed="$$failed postgres"; \
	else \
		echo "==> PostgreSQL run skipped: set POSTFACH_TEST_POSTGRES=postgres://user@127.0.0.1:5432/db?sslmode=disable to run it"; \
	fi; \
	if [ -n "$$failed" ]; then echo "==> FAILED:$$failed"; exit 1; fi; \
	echo "==> all tests passed"

# The suite with every store-backed test on the PostgreSQL database in
# POSTFACH_TEST_POSTGRES.
test-postgres:
	@if [ -z "$$POSTFACH_TEST_POSTGRES" ]; then \
		echo "test-postgres: set POSTFACH_TEST_POSTGRES to a postgres:// URL" >&2; exit 2; \
	fi
	@echo "==> go test ./... on PostgreSQL ($$(printf '%s' "$$POSTFACH_TEST_POSTGRES" | sed 's#://\([^:@/]*\):[^@/]*@#://\1:***@#'))"
	$(GO) test $(GOTESTFLAGS) ./...
