# docker/: images, compose files and the scripts that build and run them.
# tests/e2e/docker-static.test checks them without an engine; the targets
# below run them (root, scripts/install-deps.sh docker; doc/docker.md).
DOCKER_FILES = .dockerignore docker/Dockerfile docker/compose.yml docker/compose.local.yml \
	docker/ferry-amqp.conf docker/ferry-kafka.conf docker/ferry-zmq.conf \
	docker/local-base.sh docker/engine.sh docker/run.sh docker/check-flows.py
EXTRA_DIST += $(DOCKER_FILES)

# Every image, the three compose profiles, then the test suite (make check;
# DOCKER_SUITES= other scripts/check.sh suites) in the check container
# against the broker containers.
docker-check:
	FERRY_DOCKER_STATE=$(abs_top_builddir)/docker sh $(abs_top_srcdir)/docker/run.sh check $(DOCKER_SUITES)

# The images CI needs and the zmq and amqp profiles (the docker suite of
# scripts/check.sh, which CI runs).
docker-smoke:
	FERRY_DOCKER_STATE=$(abs_top_builddir)/docker sh $(abs_top_srcdir)/docker/run.sh smoke

.PHONY: docker-check docker-smoke
