#!/usr/bin/env bash
# ferry's quick start, for real: installs what it needs (Debian 12, as root), then packs an image from one
# Docker daemon, verifies the bundle, and loads it into a second, empty daemon under a new name.
# Both daemons are private (own data-root and socket under a temp dir) and are stopped at the end, so your
# own Docker is left alone. Set QUICKSTART_IMAGE=nginx:1.27 to pack that image from the daemon at
# DOCKER_HOST (or /var/run/docker.sock) instead of a demo image built here. QUICKSTART_SKIP_INSTALL=1 skips the install
# step (it is skipped piece by piece anyway where docker, busybox, zstd and ferry's node modules are already there).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# The install step runs only what is missing: the README's `npm ci` (just done) is not run again, nor apt-get for
# tools already there. QUICKSTART_SKIP_INSTALL=1 skips the whole step.
if [ "${QUICKSTART_SKIP_INSTALL:-}" != 1 ]; then
  PKGS=""
  for tool in dockerd:docker.io busybox:busybox-static zstd:zstd; do
    command -v "${tool%%:*}" >/dev/null || PKGS="$PKGS ${tool#*:}"
  done
  if [ -n "$PKGS" ]; then
    say "Installing$PKGS (apt-get)"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $PKGS ca-certificates >/dev/null
  fi
  if [ -f dist/cli/main.js ] && npm ls --depth=0 >/dev/null 2>&1; then
    say "ferry's node modules are installed (npm ci was done): not running it again"
    if [ -n "$(find src -name '*.ts' -newer dist/cli/main.js -print -quit)" ]; then npm run build --silent; fi
  else
    say "Installing ferry's node modules (npm ci builds ferry)"
    npm ci --no-audit --no-fund >/dev/null
  fi
fi
FERRY="node $(pwd)/bin/ferry"

WORK=$(mktemp -d /tmp/ferry-quickstart-XXXX)
# shellcheck source=examples/lib.sh
source examples/lib.sh

if [ -n "${QUICKSTART_IMAGE:-}" ]; then
  SOURCE="${DOCKER_HOST:-unix:///var/run/docker.sock}"
  IMAGE="$QUICKSTART_IMAGE"
  say "Source: your Docker daemon at $SOURCE, image $IMAGE"
else
  say "Starting a private source dockerd and building a demo image in it"
  start_dockerd source; SOURCE=$HOST
  mkdir -p "$WORK/rootfs/bin" "$WORK/ctx"
  cp "$(command -v busybox)" "$WORK/rootfs/bin/busybox"; ln -s busybox "$WORK/rootfs/bin/sh"
  tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
  docker -H "$SOURCE" import "$WORK/rootfs.tar" ferry-demo/base:1 >/dev/null
  echo "hello from across the gap" >"$WORK/ctx/hello.txt"
  printf 'FROM ferry-demo/base:1\nCOPY hello.txt /hello.txt\nCMD ["/bin/busybox","cat","/hello.txt"]\n' >"$WORK/ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker -H "$SOURCE" build -q -t ferry-demo/hello:1 "$WORK/ctx" >/dev/null 2>&1
  IMAGE=ferry-demo/hello:1
  docker -H "$SOURCE" images
fi

BUNDLE="$WORK/demo.ferry.tar"
say "ferry pack $IMAGE -o demo.ferry.tar   (connected side)"
DOCKER_HOST="$SOURCE" $FERRY pack "$IMAGE" -o "$BUNDLE"

say "ferry inspect demo.ferry.tar"
$FERRY inspect "$BUNDLE"

say "ferry verify demo.ferry.tar   (air-gapped side)"
$FERRY verify "$BUNDLE"

say "Starting a second, empty dockerd as the air-gapped target"
start_dockerd target; TARGET=$HOST

say "ferry load demo.ferry.tar --retag docker.io/=registry.local/mirror/"
DOCKER_HOST="$TARGET" $FERRY load "$BUNDLE" --retag docker.io/=registry.local/mirror/

say "The target now holds the same image ID under its new name"
docker -H "$TARGET" images --digests
src_id=$(docker -H "$SOURCE" image inspect --format '{{.Id}}' "$IMAGE")
echo "source image ID: $src_id"
say "Done. The private daemons are stopped and $WORK removed on exit."
