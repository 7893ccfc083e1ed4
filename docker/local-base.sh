#!/bin/sh
# Make the base image the Dockerfile starts from (debian:12-slim) without an
# image registry, when it is not already present:
#   debootstrap --variant=minbase bookworm ROOT
#   tar -C ROOT -c . | docker import - debian:12-slim
# plus what the real image has and minbase lacks: the deb822 apt sources
# (bookworm, bookworm-updates, bookworm-security), no cached .debs or
# package lists, apt's docker-clean hook, the PATH and `CMD ["bash"]`. The engine
# writes /etc/hosts, /etc/resolv.conf and /etc/hostname into each container,
# as it does for the real image.
#
# Usage: docker/local-base.sh [IMAGE]      (default debian:12-slim)
# Does nothing when IMAGE exists or can be pulled (FERRY_DOCKER_PULL=0 skips
# the pull). Needs root and debootstrap (scripts/install-deps.sh docker).
# MIRROR (default http://deb.debian.org/debian) picks the mirror.
set -eu
image=${1:-debian:12-slim}
mirror=${MIRROR:-http://deb.debian.org/debian}
docker=${DOCKER:-docker}

if $docker image inspect "$image" >/dev/null 2>&1; then
    echo "local-base: $image is present"
    exit 0
fi
if [ "${FERRY_DOCKER_PULL:-1}" != 0 ] && timeout 60 $docker pull -q "$image" >/dev/null 2>&1; then
    echo "local-base: pulled $image"
    exit 0
fi
command -v debootstrap >/dev/null 2>&1 || {
    echo "local-base: no $image and no debootstrap (sh scripts/install-deps.sh docker)" >&2
    exit 69
}
[ "$(id -u)" = 0 ] || { echo "local-base: debootstrap needs root" >&2; exit 77; }

root=$(mktemp -d "${TMPDIR:-/var/tmp}/ferry-base.XXXXXX")
trap 'rm -rf "$root"' EXIT INT TERM
start=$(date +%s)
echo "local-base: no $image to pull; debootstrap --variant=minbase bookworm from $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -n 30 "$root.log" >&2
    rm -f "$root.log"
    exit 1
}
rm -f "$root.log"

rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
# as in the real image: apt removes downloaded .debs after each install
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CLEAN'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CLEAN
printf 'Acquire::GzipIndexes "true";\n' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/tmp/*
# the engine provides these in every container
rm -f "$root/etc/hostname" "$root/etc/resolv.conf"
: >"$root/etc/hosts"

# mktemp made ROOT 0700: the image's / must be readable by every user
chmod 0755 "$root"
tar --numeric-owner -C "$root" -c . \
    | $docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["bash"]' --message "debootstrap --variant=minbase bookworm" - "$image" >/dev/null
echo "local-base: made $image in $(( $(date +%s) - start ))s"
