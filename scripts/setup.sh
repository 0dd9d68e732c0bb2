#!/usr/bin/env bash
# Installs everything ferry's tests need on a Debian 12 machine, then the node modules (npm ci builds ferry).
# Run as root (or with sudo available). Used by the README's test command and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# docker.io: dockerd 20.10 for real engines; containerd + runc: a real containerd (1.6) and ctr; podman: a reader of the OCI side; docker-registry: a real registry; skopeo: an independent reader;
# zstd: the reference compressor (bench); busybox-static: the tiny rootfs test images are built from;
# debootstrap: the bench's Debian base; time: GNU time, the bench's peak-RSS meter; curl, ca-certificates, tar, procps: plumbing.
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  docker.io containerd runc podman docker-registry apache2-utils openssl skopeo zstd busybox-static debootstrap time tar procps ca-certificates curl >/dev/null
npm ci --no-audit --no-fund
