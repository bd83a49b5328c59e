#!/usr/bin/env bash
# tools/quickstart.sh — from a clean clone on Debian 12 to a running demo or a
# green test run, in one command.
#
#   tools/quickstart.sh demo           install deps, build "release", run `netsys run`
#   tools/quickstart.sh test [PRESET]  install deps, build PRESET (default release), run ctest
#
# PRESET is one of CMakePresets.json's: dev, release, asan, tsan, ubsan.
# Installs the Debian packages it needs with apt-get (as root, or through sudo
# when not root), unless they are all installed already; set
# NETSYS_SKIP_APT=1 to never touch apt. Exits non-zero on the first failure.
#
# Not for: other distributions (install the same packages yourself, then use
# the cmake presets directly, see README.md).
set -euo pipefail

# Keep in step with README.md ("Dependencies").
PACKAGES=(
    gcc libc6-dev
    cmake ninja-build pkg-config
    libuv1-dev libssl-dev libcjson-dev libcriterion-dev
    git ca-certificates openssl
    python3 python3-jsonschema
    iproute2
    clang libclang-rt-14-dev
)

usage() {
    sed -n '2,14s/^# \{0,1\}//p' "$0"
}

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }

repo_root() {
    local here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    cd "$here/.." && pwd
}

missing_packages() {
    local pkg status
    for pkg in "${PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        [[ $status == installed ]] || printf '%s\n' "$pkg"
    done
}

install_deps() {
    if [[ ${NETSYS_SKIP_APT:-0} == 1 ]]; then
        log "NETSYS_SKIP_APT=1: not installing packages"
        return
    fi
    if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
        die "apt-get not found: this script targets Debian 12; install ${PACKAGES[*]} by hand"
    fi

    local missing
    missing=$(missing_packages)
    if [[ -z $missing ]]; then
        log "build dependencies already installed"
        return
    fi

    local -a sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "not root and no sudo: run as root, or install: $missing"
        # Without a terminal (CI) sudo must not wait for a password.
        if [[ -t 0 ]]; then sudo=(sudo); else sudo=(sudo -n); fi
    fi

    log "installing build dependencies: ${missing//$'\n'/ }"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    # shellcheck disable=SC2086 # one package per word
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends $missing
}

njobs() {
    nproc 2>/dev/null || echo 2
}

configure_and_build() {
    local preset=$1
    log "configure (preset $preset)"
    cmake --preset "$preset"
    log "build (preset $preset)"
    cmake --build --preset "$preset" --parallel "$(njobs)"
}

known_preset() {
    case $1 in
    dev | release | asan | tsan | ubsan) return 0 ;;
    *) return 1 ;;
    esac
}

main() {
    local cmd=${1:-}
    local preset=${2:-release}

    case $cmd in
    demo)
        [[ $# -le 1 ]] || die "demo takes no preset (it always builds release)"
        preset=release
        ;;
    test)
        [[ $# -le 2 ]] || die "usage: $0 test [PRESET]"
        known_preset "$preset" || die "unknown preset '$preset' (dev, release, asan, tsan, ubsan)"
        ;;
    -h | --help | help)
        usage
        return 0
        ;;
    *)
        usage >&2
        return 2
        ;;
    esac

    cd "$(repo_root)"
    install_deps
    configure_and_build "$preset"

    case $cmd in
    demo)
        log "run build/$preset/tools/netsys/netsys run (the default tree; Ctrl-C stops it)"
        "build/$preset/tools/netsys/netsys" run
        ;;
    test)
        log "test (preset $preset)"
        ctest --preset "$preset" --parallel "$(njobs)"
        log "all tests passed (preset $preset)"
        ;;
    esac
}

main "$@"
