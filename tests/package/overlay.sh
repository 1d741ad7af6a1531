# tests/package/overlay.sh - sourced by tests/package/run and
# tests/walkthrough/run: a throwaway copy of this machine's root to install
# packages into and change /etc in, without changing the machine.
#
#   overlay_reexec "$0" "$@"   once, first: re-runs the script in a private
#                              mount namespace (nothing mounted here is
#                              seen outside it, and all of it goes with it)
#   overlay_setup              $root: an overlay of / (upper layer on a
#                              tmpfs), with /proc, /sys, its own /dev
#                              (device nodes bound from the host, its own
#                              /dev/log), /run and /tmp
#   overlay_chroot CMD...      runs CMD chrooted in $root, with a clean
#                              environment
#   overlay_leftovers          prints what in the upper layer is new to
#                              this machine or a removal of its files
#                              ("left behind: PATH", "removed: PATH"),
#                              logs and man's page cache aside
# At exit, every process chrooted in $root is killed and the mounts go.

overlay_reexec() {
	[ "$(id -u)" = 0 ] || { echo "$1: needs root" >&2; exit 1; }
	if [ "${TLSGATE_OVERLAY_NS:-}" != 1 ]; then
		TLSGATE_OVERLAY_NS=1 exec unshare --mount --propagation private "$@"
	fi
}

overlay_setup() {
	top=$(mktemp -d /tmp/tlsgate-overlay.XXXXXX)
	mount -t tmpfs -o mode=0755 tlsgate-overlay "$top"
	mkdir "$top/upper" "$top/work" "$top/root"
	mount -t overlay overlay \
		-o "lowerdir=/,upperdir=$top/upper,workdir=$top/work" "$top/root"
	root=$top/root
	trap overlay_cleanup EXIT
	mount --rbind /proc "$root/proc"
	mount --rbind /sys "$root/sys"
	mount -t tmpfs -o mode=0755 tlsgate-overlay-dev "$root/dev"
	for node in null zero full random urandom tty; do
		touch "$root/dev/$node"
		mount --bind "/dev/$node" "$root/dev/$node"
	done
	mkdir "$root/dev/pts" "$root/dev/shm"
	mount --rbind /dev/pts "$root/dev/pts"
	mount -t tmpfs -o mode=1777 tlsgate-overlay-shm "$root/dev/shm"
	ln -s /proc/self/fd "$root/dev/fd"
	ln -s /proc/self/fd/0 "$root/dev/stdin"
	ln -s /proc/self/fd/1 "$root/dev/stdout"
	ln -s /proc/self/fd/2 "$root/dev/stderr"
	mount -t tmpfs -o mode=0755 tlsgate-overlay-run "$root/run"
	mount -t tmpfs -o mode=1777 tlsgate-overlay-tmp "$root/tmp"
	overlay_bind_repo
}

# The work tree ($repo), at its own path inside: the overlay's own /tmp
# and /run (and any file system mounted below /, which an overlay of /
# does not show) would hide a checkout that lives there. Read-only: the
# tests read the tree, they do not change it.
overlay_bind_repo() {
	[ -n "${repo:-}" ] || return 0
	mkdir -p "$root$repo"
	mount --bind "$repo" "$root$repo"
	mount -o remount,bind,ro "$root$repo"
}

overlay_chroot() {
	chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
		LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 "$@"
}

# Whatever the chrooted commands left running: processes whose root is
# the overlay.
overlay_stop_leftovers() {
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] || continue
		kill -9 "${p#/proc/}" 2>/dev/null || true
	done
}

overlay_cleanup() {
	[ -n "${root:-}" ] && overlay_stop_leftovers
	umount -l "$top" 2>/dev/null
	rmdir "$top" 2>/dev/null
}

# Logs are allowed to stay, and so is man's cache of formatted pages
# (systemd-analyze verify formats the unit's Documentation= pages; man-db's
# cron job expires them).
overlay_leftovers() {
	(cd "$top/upper" && find . \( -path ./var/log -o -path ./var/cache/man \) \
		-prune -o -print) | sed -e 's|^\.||' -e '/^$/d' |
	grep -v -x -F -e "$repo" -e "$(dirname "$repo")" |
	while IFS= read -r path; do
		up=$top/upper$path
		if [ -c "$up" ] && [ "$(stat -c %t:%T "$up")" = 0:0 ]; then
			echo "removed: $path"
		elif [ ! -e "$path" ] && [ ! -L "$path" ]; then
			echo "left behind: $path"
		fi
	done
}
