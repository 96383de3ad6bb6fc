#!/usr/bin/env bash
# abh.sh: the bench harness built at two git revisions, one scenario run
# alternately by each build (its servers in processes of their own), then
# the median of the pair ratios. Prints per run: calls (or items)/s, the
# client's and the server's CPU per call. The order within a pair swaps
# every pair (ab, ba, ab, ...): on this machine the first run of a pair
# was favoured by 1-2%, which a fixed order counts as a difference.
#
#   bench/abh.sh REV_A REV_B RUNS [SCENARIO [SYSTEM]]
#   bench/abh.sh HEAD~1 HEAD 8 stream-1024 rove
#   bench/abh.sh HEAD work 8 4x256 rove-pool
#
# REV may be "work" for the working tree. SCENARIO defaults to 4x256,
# SYSTEM (a harness kind) to rove.
set -euo pipefail
a=$1 b=$2 runs=$3 sc=${4:-4x256} sys=${5:-rove}
root=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
. "$root/bench/buildrev.sh"
build_rev "$a" bench . "$tmp/a"; build_rev "$b" bench . "$tmp/b"
cd "$tmp"
for i in $(seq 1 "$runs"); do
	order="a b"; [ $((i % 2)) = 0 ] && order="b a"
	for v in $order; do
		rev=$a; [ $v = b ] && rev=$b
		# The table row: | system | rate | range | p50 | p99 | p99.9 | client CPU | server CPU | failed |
		"$tmp/$v" -scenarios "$sc" -systems "$sys" -runs 1 -idle 0 -open=false -out - 2>/dev/null |
			awk -F'|' -v r="$rev" '/^\| Rove/ {gsub(/ /, "", $3); print r, $3, $8, $9}' | tee /dev/stderr |
			awk -v v="$v" '{ print v, $2 }' >>"$tmp/runs"
	done
done 2>&1
# Median of the pair ratios b/a of the rates (k and M suffixes); each pair
# is two lines, a and b in either order.
awk 'function v(x) { m = substr(x, length(x)); n = substr(x, 1, length(x) - 1); return m == "M" ? n * 1e6 : m == "k" ? n * 1e3 : x }
	{ r[$1] = v($2) } NR % 2 == 0 { printf "%.4f\n", r["b"] / r["a"] }' "$tmp/runs" >"$tmp/ratios"
echo "pairs $(wc -l <"$tmp/ratios"), median ratio $(median_range <"$tmp/ratios")"
