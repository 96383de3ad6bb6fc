#!/usr/bin/env bash
# abserve.sh: the bench harness built at two git revisions, each build's
# server (`bench serve -kind rove`) run alternately against one client
# (`bench load`, built at REV_A), then the median of the pair ratios of
# the rates and of the server's CPU per call. Only the server differs
# between the two runs of a pair, so a change to the server is measured
# without the client's build moving the ratio. The order within a pair
# swaps every pair, as in abh.sh.
#
#   bench/abserve.sh REV_A REV_B RUNS [KIND [CONNS [INFLIGHT]]]
#   bench/abserve.sh e2ec32c 823927c 8 rove-pool 4 256
#
# REV may be "work" for the working tree. KIND (a `bench load` kind)
# defaults to rove-pool, CONNS to 4, INFLIGHT to 256.
set -euo pipefail
a=$1 b=$2 runs=$3 kind=${4:-rove-pool} conns=${5:-4} inflight=${6:-256}
root=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d)
srv=
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -rf "$tmp"' EXIT
. "$root/bench/buildrev.sh"
build_rev "$a" bench . "$tmp/a"; build_rev "$b" bench . "$tmp/b"
addr=127.0.0.1:$((20000 + RANDOM % 20000))
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # clock ticks
for i in $(seq 1 "$runs"); do
	order="a b"; [ $((i % 2)) = 0 ] && order="b a"
	for v in $order; do
		"$tmp/$v" serve -kind rove -addr "$addr" >/dev/null 2>&1 &
		srv=$!
		for _ in $(seq 200); do (exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null && break; sleep 0.05; done
		c0=$(cpu "$srv")
		rate=$("$tmp/a" load -kind "$kind" -target "$addr" -conns "$conns" -inflight "$inflight" -d 3s -warmup 1s |
			sed 's/.*"calls_per_s":\([0-9.]*\).*/\1/')
		c1=$(cpu "$srv")
		kill -INT "$srv"; wait "$srv" || true; srv=
		# The CPU covers the warm-up too: 4 s of calls at about the rate.
		echo "$v $rate $c0 $c1" | tee -a "$tmp/runs" |
			awk -v t="$(getconf CLK_TCK)" '{ printf "%s %.0f calls/s, server %.0f ns a call\n", $1, $2, ($4 - $3) / t / ($2 * 4) * 1e9 }'
	done
done
awk -v t="$(getconf CLK_TCK)" '
	{ r[$1] = $2; c[$1] = ($4 - $3) / t / ($2 * 4) }
	NR % 2 == 0 { printf "%.4f %.4f\n", r["b"] / r["a"], c["b"] / c["a"] }' "$tmp/runs" >"$tmp/ratios"
echo "pairs $(wc -l <"$tmp/ratios"), median rate ratio $(cut -d' ' -f1 "$tmp/ratios" | median_range), server CPU a call $(cut -d' ' -f2 "$tmp/ratios" | median_range)"
