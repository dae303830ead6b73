#!/bin/sh
# Builds rxbench (rxbench.c + rxgen's stubs of interfaces/bench.xg) against
# OpenAFS's rx library (Debian libopenafs-dev) into the directory given ($1).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: build.sh OUTPUT_DIRECTORY}"
mkdir -p "$out"
cp "$here/../interfaces/bench.xg" "$out/bench.xg"
cd "$out"
rxgen bench.xg
# rxgen output includes the in-tree config header, which the -dev package does not ship.
: > afsconfig.h
# roken (Heimdal portability) is not needed on Linux: an empty stand-in satisfies the include.
: > roken.h
cc -O2 -w -DAFS_PTHREAD_ENV -I. -o rxbench "$here/rxbench.c" bench.cs.c bench.ss.c bench.xdr.c -lafsrpc -lpthread
