#!/usr/bin/env bash
# tests/install/consumer_pkgconfig.sh — installs netsys into a scratch
# prefix and compiles examples/hello.c with only `pkg-config netsys`, as a
# Makefile user would: once against the shared library (run with
# LD_LIBRARY_PATH) and once statically against libnetsys.a with
# `pkg-config --static`, which checks Requires.private / Libs.private.
# Run by ctest (install_consumer_pkgconfig).
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

pkg_config=${NETSYS_PKG_CONFIG:-pkg-config}

install_netsys

pc=$(find "$prefix" -name netsys.pc -print -quit)
if [[ -z $pc ]]; then
    echo "error: no netsys.pc under $prefix" >&2
    exit 1
fi
PKG_CONFIG_PATH="$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_PATH
"$pkg_config" --exists --print-errors netsys
libdir=$("$pkg_config" --variable=libdir netsys)
echo "netsys $("$pkg_config" --modversion netsys), libdir $libdir"

read -ra cflags <<<"$("$pkg_config" --cflags netsys)"
read -ra libs <<<"$("$pkg_config" --libs netsys)"
read -ra static_libs <<<"$("$pkg_config" --static --libs netsys)"
read -ra extra <<<"$san_flags"
warn=(-Wall -Wextra -Wpedantic -Werror)
hello=$NETSYS_SOURCE_DIR/examples/hello.c

step "compile and run against the shared library"
"$NETSYS_CC" "${warn[@]}" "${extra[@]}" "${cflags[@]}" -o "$work/hello-shared" "$hello" \
    "${libs[@]}"
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    check_linkage "$work/hello-shared" shared
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$work/hello-shared" "${hello_args[@]}"

step "compile and run against the static library (pkg-config --static)"
link=()
for arg in "${static_libs[@]}"; do
    if [[ $arg == -lnetsys ]]; then
        # shellcheck disable=SC2054 # linker flags, not list separators
        link+=(-Wl,-Bstatic -lnetsys -Wl,-Bdynamic)
    else
        link+=("$arg")
    fi
done
"$NETSYS_CC" "${warn[@]}" "${extra[@]}" "${cflags[@]}" -o "$work/hello-static" "$hello" \
    "${link[@]}"
check_linkage "$work/hello-static" static
"$work/hello-static" "${hello_args[@]}"
