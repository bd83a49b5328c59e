# shellcheck shell=bash disable=SC2034 # variables used by the sourcing scripts
# tests/install/common.sh — shared setup for the install checks (sourced).
#
# ctest passes the build's facts in the environment (tests/CMakeLists.txt):
# NETSYS_SOURCE_DIR, NETSYS_BUILD_DIR, NETSYS_CMAKE, NETSYS_GENERATOR,
# NETSYS_CC, NETSYS_SANITIZER_FLAGS (may be empty), NETSYS_PKG_CONFIG.
# $1 is a scratch directory owned by the check; it is emptied first.

set -euo pipefail

for var in NETSYS_SOURCE_DIR NETSYS_BUILD_DIR NETSYS_CMAKE NETSYS_CC; do
    if [[ -z "${!var:-}" ]]; then
        echo "error: $var is not set (run this through ctest)" >&2
        exit 2
    fi
done
if [[ $# -ne 1 ]]; then
    echo "usage: $0 SCRATCH_DIR" >&2
    exit 2
fi

work=$1
prefix=$work/prefix
san_flags=${NETSYS_SANITIZER_FLAGS:-}
hello_args=(--actors 4 --hops 1000)

rm -rf "$work"
mkdir -p "$work"

step() { printf '\n== %s\n' "$*"; }

install_netsys() {
    step "install into $prefix"
    "$NETSYS_CMAKE" --install "$NETSYS_BUILD_DIR" --prefix "$prefix"
}

# Fails unless the dynamic loader resolves libnetsys for $1 inside $prefix
# ($2 = "shared"), or does not load it at all ($2 = "static").
check_linkage() {
    local exe=$1 want=$2 line
    command -v ldd >/dev/null || return 0
    line=$(ldd "$exe" | grep 'libnetsys\.so' || true)
    case $want in
    shared)
        if [[ $line != *"$prefix"/* ]]; then
            echo "error: $exe does not load libnetsys from $prefix: ${line:-not linked}" >&2
            return 1
        fi ;;
    static)
        if [[ -n $line ]]; then
            echo "error: $exe should be static in netsys but loads: $line" >&2
            return 1
        fi ;;
    esac
}
