# docker/: images and compose file (checked without a Docker engine by
# tests/e2e/docker-static.test).
DOCKER_FILES = docker/Dockerfile docker/Dockerfile.dockerignore docker/compose.yml \
	docker/ferry-amqp.conf docker/ferry-kafka.conf docker/ferry-zmq.conf
EXTRA_DIST += $(DOCKER_FILES)
