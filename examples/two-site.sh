#!/usr/bin/env bash
# Two sites, two weeks, for real: a connected side (a source dockerd and ferry's catalog) ships images to a
# disconnected site B (its own dockerd). Week 1 goes in full; week 2 carries only what B lacks, planned from the
# catalog, and B's receipts and inventory come back on the next trip. Everything runs in private daemons under a
# temp dir, stopped at the end. Needs docker.io and busybox-static (see examples/quickstart.sh), and ferry built.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

FERRY="node $(pwd)/bin/ferry"
WORK=$(mktemp -d /tmp/ferry-two-site-XXXX)
# shellcheck source=examples/lib.sh
source examples/lib.sh
# The catalog lives under FERRY_HOME (default: ~/.local/share/ferry); a private one here.
export FERRY_HOME="$WORK/connected-side"
cd "$WORK"

say "Connected side: a source dockerd with a base image and two images on it"
start_dockerd source; SOURCE=$HOST
mkdir -p rootfs/bin && cp "$(command -v busybox)" rootfs/bin/busybox && ln -s busybox rootfs/bin/sh
head -c 2000000 /dev/urandom >rootfs/bin/payload   # a base layer worth leaving behind
tar -C rootfs -cf rootfs.tar . && docker -H "$SOURCE" import rootfs.tar demo/base:1 >/dev/null
demo_image "$SOURCE" demo/app:1 demo/base:1 app.txt "app version 1"
demo_image "$SOURCE" demo/tool:1 demo/base:1 tool.txt "tool version 1"

say "ferry site add site-b"
$FERRY site add site-b --note "plant floor, USB weekly"

say "Week 1: ferry pack demo/app:1 demo/tool:1 --site site-b -o week1.ferry.tar   (nothing known yet: full)"
DOCKER_HOST=$SOURCE $FERRY pack demo/app:1 demo/tool:1 --site site-b -o week1.ferry.tar

say "Site B: ferry load week1.ferry.tar --receipt week1.receipt.json; ferry inventory -o site-b.inventory.json"
start_dockerd site-b; SITE_B=$HOST
DOCKER_HOST=$SITE_B $FERRY load week1.ferry.tar --receipt week1.receipt.json
DOCKER_HOST=$SITE_B $FERRY inventory -o site-b.inventory.json

say "Connected side, next trip: ferry site import week1.receipt.json site-b.inventory.json --site site-b"
$FERRY site import week1.receipt.json site-b.inventory.json --site site-b

say "Week 2: app rebuilt, tool unchanged; ferry pack ... --site site-b -o week2.ferry.tar   (only what B lacks)"
demo_image "$SOURCE" demo/app:2 demo/base:1 app.txt "app version 2"
DOCKER_HOST=$SOURCE $FERRY pack demo/app:2 demo/tool:1 --site site-b -o week2.ferry.tar
$FERRY inspect week2.ferry.tar
ls -l week1.ferry.tar week2.ferry.tar

say "Site B: ferry verify week2.ferry.tar --have site-b.inventory.json; ferry load week2.ferry.tar --receipt week2.receipt.json"
$FERRY verify week2.ferry.tar --have site-b.inventory.json
DOCKER_HOST=$SITE_B $FERRY load week2.ferry.tar --receipt week2.receipt.json
docker -H "$SITE_B" images

say "Connected side: ferry site import week2.receipt.json; ferry site show site-b"
$FERRY site import week2.receipt.json
$FERRY site show site-b
echo "source app:2 image ID: $(docker -H "$SOURCE" image inspect --format '{{.Id}}' demo/app:2)"
echo "site-b app:2 image ID: $(docker -H "$SITE_B" image inspect --format '{{.Id}}' demo/app:2)"
say "Done. The private daemons are stopped and $WORK removed on exit."
