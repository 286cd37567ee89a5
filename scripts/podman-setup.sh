#!/usr/bin/env bash
# Installs podman, serves its Docker Engine API socket and builds the four images the CWL
# conformance suite uses, without a container registry (Debian's packages only).
# Idempotent: each step is skipped when its result is already there. Needs root (apt,
# debootstrap, a system socket).
set -euo pipefail

SOCKET="${CWL_CRUNCH_PODMAN_SOCKET:-/run/podman/podman.sock}"
ROOTFS_CACHE="${CWL_CRUNCH_ROOTFS_CACHE:-/var/cache/cwl-crunch/rootfs.tar}"
IMAGES=(docker.io/debian:stable-slim docker.io/python:3-slim docker.io/alpine:latest)
# The real bash image's ENTRYPOINT runs `bash "$@"` when the first argument is an option
# (`-c ...`) and the command itself otherwise (`bash -c ...`): the suite relies on both.
ENTRYPOINT_IMAGE=docker.io/bash:4.4
ENTRYPOINT_SCRIPT='#!/bin/bash
set -Eeuo pipefail
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  exec bash "$@"
fi
exec "$@"'

log() { echo "== podman-setup: $*"; }

install_packages() {
  if command -v podman >/dev/null && command -v runc >/dev/null && command -v debootstrap >/dev/null; then
    return
  fi
  log "installing podman, runc, debootstrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends podman runc debootstrap uidmap \
    ca-certificates >/dev/null
}

configure_engine() {
  # crun fails on this kernel's hybrid cgroups; default ulimits cannot be raised here.
  mkdir -p /etc/containers
  cat >/etc/containers/containers.conf <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
CONF
}

start_socket() {
  if curl -sf --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1; then
    return
  fi
  log "starting the API socket at $SOCKET"
  mkdir -p "$(dirname "$SOCKET")"
  rm -f "$SOCKET"
  nohup podman system service --time=0 "unix://$SOCKET" >/var/log/podman-service.log 2>&1 &
  for _ in $(seq 1 100); do
    curl -sf --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "podman API socket did not come up; see /var/log/podman-service.log" >&2
  exit 1
}

build_rootfs_tar() {
  [ -s "$ROOTFS_CACHE" ] && return
  log "debootstrap (minbase + python3)"
  local dir
  dir="$(mktemp -d)"
  debootstrap --variant=minbase --include=python3,python-is-python3 bookworm "$dir" \
    >/var/log/debootstrap-cwl-crunch.log 2>&1
  mkdir -p "$(dirname "$ROOTFS_CACHE")"
  tar -C "$dir" -cf "$ROOTFS_CACHE.part" .
  mv "$ROOTFS_CACHE.part" "$ROOTFS_CACHE"
  rm -rf "$dir"
}

import_images() {
  local missing=()
  for image in "${IMAGES[@]}" "$ENTRYPOINT_IMAGE"; do
    podman image exists "$image" || missing+=("$image")
  done
  [ "${#missing[@]}" -eq 0 ] && return
  build_rootfs_tar
  for image in "${IMAGES[@]}"; do
    podman image exists "$image" && continue
    log "importing $image"
    podman import -q "$ROOTFS_CACHE" "$image" >/dev/null
  done
  if ! podman image exists "$ENTRYPOINT_IMAGE"; then
    log "building $ENTRYPOINT_IMAGE"
    local context
    context="$(mktemp -d)"
    printf '%s\n' "$ENTRYPOINT_SCRIPT" >"$context/docker-entrypoint.sh"
    chmod 755 "$context/docker-entrypoint.sh"
    cat >"$context/Containerfile" <<BUILD
FROM ${IMAGES[0]}
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["bash"]
BUILD
    podman build -q --network none -t "$ENTRYPOINT_IMAGE" "$context" >/dev/null
    rm -rf "$context"
  fi
}

install_packages
configure_engine
start_socket
import_images
log "ready: DOCKER_HOST=unix://$SOCKET"
