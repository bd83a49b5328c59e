#!/usr/bin/env bash
# tests/install/consumer_cmake.sh — installs netsys into a scratch prefix,
# builds examples/consumer (find_package(netsys)) against it, and runs the
# shared and static builds of hello. Run by ctest (install_consumer_cmake).
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

install_netsys

step "configure examples/consumer against $prefix"
"$NETSYS_CMAKE" -S "$NETSYS_SOURCE_DIR/examples/consumer" -B "$work/build" \
    ${NETSYS_GENERATOR:+-G "$NETSYS_GENERATOR"} \
    -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_COMPILER="$NETSYS_CC" \
    -DCMAKE_C_FLAGS="$san_flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$san_flags" \
    -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF

found=$(sed -n 's/^netsys_DIR:PATH=//p' "$work/build/CMakeCache.txt")
if [[ $found != "$prefix"/* ]]; then
    echo "error: find_package(netsys) used '$found', not the package in $prefix" >&2
    exit 1
fi

step "build"
"$NETSYS_CMAKE" --build "$work/build"

step "run (shared)"
check_linkage "$work/build/netsys-hello" shared
"$work/build/netsys-hello" "${hello_args[@]}"

step "run (static)"
check_linkage "$work/build/netsys-hello-static" static
"$work/build/netsys-hello-static" "${hello_args[@]}"
