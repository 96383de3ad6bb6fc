# buildrev.sh is sourced by ab.sh, abh.sh and abserve.sh, which set root
# (the repository) and tmp (a scratch directory) first.
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
