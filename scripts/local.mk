# The scripts of the README's commands, the Dockerfile and CI.
EXTRA_DIST += scripts/install-deps.sh scripts/build.sh scripts/demo.sh \
	scripts/check.sh scripts/check-sanitizers.sh
