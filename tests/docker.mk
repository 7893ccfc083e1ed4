# docker/: images and compose file, checked without a Docker engine.
DOCKER_FILES = docker/Dockerfile docker/Dockerfile.dockerignore docker/compose.yml \
	docker/ferry-amqp.conf docker/ferry-kafka.conf docker/ferry-zmq.conf
EXTRA_DIST += $(DOCKER_FILES) tests/e2e/docker-static.py tests/e2e/docker-static.test
TESTS += tests/e2e/docker-static.test
