#!/usr/bin/env bash
# ab.sh: loadgen from two git revisions, runs interleaved, each against its
# own server in a separate process. Prints calls/s, p50 and p99 (µs) per run.
#
#   bench/ab.sh REV_A REV_B RUNS [loadgen client flags...]
#   bench/ab.sh HEAD~1 HEAD 5 -conns 4 -inflight 256 -d 3s -warmup 1s
#
# REV may be "work" for the working tree. Server flags: AB_SERVE="-handler pool".
set -euo pipefail
a=$1 b=$2 runs=$3; shift 3
root=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
. "$root/bench/buildrev.sh"
build_rev "$a" . ./cmd/loadgen "$tmp/a"; build_rev "$b" . ./cmd/loadgen "$tmp/b"
port=${AB_PORT:-9311}
for i in $(seq 1 "$runs"); do
	# The order within a pair swaps every pair: the first run of a pair
	# was favoured by 1-2% on this machine.
	order="a b"; [ $((i % 2)) = 0 ] && order="b a"
	for v in $order; do
		"$tmp/$v" serve -addr 127.0.0.1:$port ${AB_SERVE:-} >/dev/null 2>&1 & sp=$!
		for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
		"$tmp/$v" -target 127.0.0.1:$port -quiet -json "$tmp/$v.json" "$@" >/dev/null 2>&1 || true
		kill $sp; wait $sp 2>/dev/null || true
		rev=$a; [ $v = b ] && rev=$b
		f=$(tr -d ' \n' < "$tmp/$v.json")
		num() { echo "$f" | grep -o "\"$1\":[0-9.]*" | head -1 | cut -d: -f2 | cut -d. -f1; }
		echo "$rev $(num calls_per_s) p50 $(num p50) p99 $(num p99)"
	done
done
