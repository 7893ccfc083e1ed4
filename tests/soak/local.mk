# The soak: not part of `make check`; FERRY_SOAK_COUNT (default 1,000,000)
# messages per transport, figures in soak/TRANSPORT.md and soak/report.md.
SOAK_TESTS = tests/soak/zmq.test tests/soak/amqp.test tests/soak/kafka.test
EXTRA_DIST += $(SOAK_TESTS) tests/soak/soak.sh
soak: all
	@rm -f soak/*.md
	-$(MAKE) $(AM_MAKEFLAGS) check TESTS="$(SOAK_TESTS)"; echo $$? >soak.status
	@mkdir -p soak; { \
	  echo "| transport | messages | seconds | msgs/s | producer RSS MiB start / peak / end | aggregator RSS MiB start / peak / end | missing / duplicates |"; \
	  echo "|---|---:|---:|---:|---|---|---|"; \
	  for t in zmq amqp kafka; do test -f soak/$$t.md && cat soak/$$t.md; done; } >soak/report.md
	@cat soak/report.md; s=$$(cat soak.status); rm -f soak.status; exit $$s
clean-local: clean-soak
clean-soak:
	-rm -rf soak
.PHONY: soak clean-soak
