#!/usr/bin/env bash
# Builds the pd_pipeline image (the Dockerfile at the repository's root) as pd-pipeline:<version>
# and pd-pipeline:latest, from the wheelhouse `make wheelhouse` left in dist/wheelhouse
# (`make image` runs both). Further arguments go to the build (e.g. --iidfile FILE,
# --build-arg PD_EXTRAS=demo -t pd-pipeline:demo).
#
# With docker when a Docker daemon answers, else with podman, set up for hosts like the CI machine
# (no Docker daemon, no registry, crun unusable): installed with apt-get when missing (as root on
# Debian), runc with deploy/image/containers.conf (CONTAINERS_CONF), the host's network, and
# debian:bookworm-slim bootstrapped with mmdebstrap when no such image is present.
#
#   PD_CONTAINER_ENGINE=docker|podman  choose instead of detecting
#   BASE=image                         the base image (debian:bookworm-slim)
#   PD_IMAGE=name                      the image's name (pd-pipeline)
#   deploy/image/build.sh engine       set up and print the engine only (docker or podman)
#   deploy/image/build.sh wheelhouse   build dist/wheelhouse only (`make wheelhouse`), with the
#                                      Python in PYTHON (python3): it must be a 3.11, as the image's
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BASE=${BASE:-debian:bookworm-slim}
IMAGE=${PD_IMAGE:-pd-pipeline}
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/pyproject.toml" | head -n 1)

say() { echo "build.sh: $*" >&2; }

pick_engine() {
    if [ -n "${PD_CONTAINER_ENGINE:-}" ]; then
        echo "$PD_CONTAINER_ENGINE"
    elif command -v docker > /dev/null && docker info > /dev/null 2>&1; then
        echo docker
    else
        echo podman
    fi
}

# apt-get install, when allowed here (root on Debian); else say what to install and stop.
install_packages() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get > /dev/null; then
        say "missing: $*; install them (on Debian: apt-get install -y $*) or start a Docker daemon"
        exit 1
    fi
    say "installing $* with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # Waits for another apt (an unattended upgrade, a second setup) instead of failing at once.
    local apt=(apt-get -o DPkg::Lock::Timeout=600)
    "${apt[@]}" install -y -q "$@" > /dev/null || {
        "${apt[@]}" update -q > /dev/null
        "${apt[@]}" install -y -q "$@" > /dev/null
    }
}

setup_podman() {
    export CONTAINERS_CONF=${CONTAINERS_CONF:-$HERE/containers.conf}
    local missing=()
    command -v podman > /dev/null || missing+=(podman)
    command -v runc > /dev/null || missing+=(runc)
    [ ${#missing[@]} -eq 0 ] || install_packages "${missing[@]}"
    if ! podman image exists "$BASE"; then
        [ "$BASE" = debian:bookworm-slim ] || { say "no image $BASE here"; exit 1; }
        command -v mmdebstrap > /dev/null || install_packages mmdebstrap
        local tmp
        tmp=$(mktemp -d)
        say "no $BASE here: bootstrapping it with mmdebstrap (minbase)"
        mmdebstrap --quiet --variant=minbase --format=tar bookworm "$tmp/base.tar"
        podman import --quiet "$tmp/base.tar" "$BASE" > /dev/null
        rm -rf "$tmp"
    fi
}

# dist/wheelhouse: the pd_pipeline wheel and a wheel of every dependency (the demo extra's too,
# for the demo image, and the demo S3 server's, deploy/s3/). The dependencies' wheels are fetched
# again only when pyproject.toml or this list changed since (rm -rf dist to refresh them anyway);
# pd_pipeline's is built afresh every time (a stale build/ folder can put deleted files in a
# wheel), with fixed timestamps, so the same sources give the same bytes and the image's layers
# are reused. The checksums of pd_pipeline's wheel and of the others key the image's two install
# steps.
DEMO_S3=("moto[s3]>=5" flask flask-cors)
wheelhouse() {
    local python=${PYTHON:-python3} out=$ROOT/dist/wheelhouse spec
    "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
        say "the wheelhouse needs Python 3.11 (the image runs Debian bookworm's), not $("$python" -V)"
        exit 1
    }
    spec=$( (cat "$ROOT/pyproject.toml" && echo "${DEMO_S3[*]}") | sha256sum)
    export SOURCE_DATE_EPOCH=315532800
    rm -rf "$ROOT/build"
    if [ "$(cat "$out/.pyproject.sha256" 2> /dev/null)" = "$spec" ]; then
        rm -f "$out"/pd_pipeline-*.whl
        (cd "$ROOT" && "$python" -m pip wheel -q --no-deps -w "$out" .)
    else
        rm -rf "$out"
        (cd "$ROOT" && "$python" -m pip wheel -q -w "$out" '.[demo]' "${DEMO_S3[@]}")
        echo "$spec" > "$out/.pyproject.sha256"
    fi
    rm -rf "$ROOT/build"
    cd "$out"
    sha256sum pd_pipeline-*.whl > pd_pipeline.sha256
    for wheel in *.whl; do
        case "$wheel" in pd_pipeline-*) ;; *) sha256sum "$wheel" ;; esac
    done > dependencies.sha256
    say "$(ls -- *.whl | wc -l) wheels in dist/wheelhouse"
}

if [ "${1:-}" = wheelhouse ]; then
    wheelhouse
    exit 0
fi

ENGINE=$(pick_engine)
case "$ENGINE" in
    docker) BUILD=(docker build) ;;
    # HEALTHCHECK is kept only in the docker image format.
    podman) setup_podman; BUILD=(podman --runtime runc build --network host --format docker) ;;
    *) say "PD_CONTAINER_ENGINE must be docker or podman, not $ENGINE"; exit 1 ;;
esac
if [ "${1:-}" = engine ]; then
    echo "$ENGINE"
    exit 0
fi

if ! ls "$ROOT"/dist/wheelhouse/pd_pipeline-"$VERSION"-*.whl > /dev/null 2>&1; then
    say "no pd_pipeline $VERSION wheel in dist/wheelhouse: run make wheelhouse (make image does)"
    exit 1
fi
# The version's tags, unless the arguments name tags of their own (a demo build).
TAGS=(-t "$IMAGE:$VERSION" -t "$IMAGE:latest")
for arg in "$@"; do
    case "$arg" in -t | --tag | -t=* | --tag=*) TAGS=() ;; esac
done
say "building ${TAGS[1]:-the image} with $ENGINE"
"${BUILD[@]}" --build-arg BASE="$BASE" "${TAGS[@]}" "$@" "$ROOT"
