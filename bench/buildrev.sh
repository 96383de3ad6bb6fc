# buildrev.sh is sourced by ab.sh, abh.sh and abserve.sh, which set root
# (the repository) and tmp (a scratch directory) first.
#
# median_range reads one number a line and prints "median (min-max)",
# with three decimals; the median of an even count is the mean of the
# middle two. It prints nothing for no input.
median_range() {
	sort -n | awk '{ v[++n] = $1 } END { if (n) printf "%.3f (%.3f-%.3f)", (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2), v[1], v[n] }'
}
#
# build_rev REV DIR PKG OUT builds package PKG, relative to the
# repository's directory DIR, at git revision REV ("work": the working
# tree) into the binary OUT, through a worktree under $tmp.
build_rev() {
	local rev=$1 dir=$2 pkg=$3 out=$4 src=$root
	if [ "$rev" != work ]; then
		src=$tmp/src-$rev
		git -C "$root" worktree add -q --detach "$src" "$rev"
	fi
	(cd "$src/$dir" && go build -o "$out" "$pkg")
	if [ "$rev" != work ]; then
		git -C "$root" worktree remove --force "$src"
	fi
}
