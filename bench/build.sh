#!/bin/bash
# Builds examples/hello-web with debship and with dh-virtualenv
# (dpkg-buildpackage -b on the debian/ folder in bench/dh-virtualenv) for
# each target, in the same run, interleaved, RUNS times each, and prints one
# table per target: wall time, .deb size, Installed-Size, lintian counts (of
# that release's lintian), and the ratios. Not a test.
#
# A target that is the host's release builds on the host with both tools.
# For another release, debship builds in its cached root (as root, the way
# `debship build --target` always does; the first run makes the root), and
# dh-virtualenv runs in an overlay of that same root with dh-virtualenv and
# debhelper added by apt, so both use that release's python3. Timed: the
# builds only, with warm caches on both sides.
# Needs: root for a foreign target; make build; on the host
# apt-get install dh-virtualenv debhelper dh-python lintian python3-wheel-whl
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
TARGETS=${TARGETS:-debian-13 debian-12}
DEBSHIP=${DEBSHIP:-$PWD/bin/debship}
[ -x "$DEBSHIP" ] || make build >/dev/null
for c in dpkg-buildpackage dh_virtualenv lintian bc; do
	command -v $c >/dev/null || { echo "bench: $c missing; apt-get install dh-virtualenv debhelper dh-python lintian bc" >&2; exit 1; }
done
# shellcheck source=/dev/null
host=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
work=$(mktemp -d /var/tmp/debship-bench.XXXXXX)
mounted=()
cleanup() {
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
export SOURCE_DATE_EPOCH=1770116400

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
size() { stat -c %s "$1"; }
isz() { dpkg-deb --field "$1" Installed-Size; }
# suite is the release a .deb was built for: debship writes it as the
# changelog's distribution (the releases table lives in debship only).
suite() {
	dpkg-deb --fsys-tarfile "$1" | tar -xO "./usr/share/doc/hello-web/changelog.Debian.gz" | zcat | sed -n '1s/^[^)]*) \([a-z]*\);.*/\1/p'
}

for target in $TARGETS; do
	t="$work/$target"
	mkdir -p "$t"
	cp -r examples/hello-web "$t/src-debship"
	# A first debship build, untimed: it names the target's suite and, on
	# another release, makes the cached root both tools build in.
	first=$("$DEBSHIP" build "$t/src-debship" --output "$t/probe" --no-index --target "$target" 2>"$t/debship.log" | tail -n 1)
	s=$(suite "$first")
	root="" # where dh-virtualenv runs: "" is the host
	if [ "$s" != "$host" ]; then
		base=$(find /var/cache/debship/build -maxdepth 1 -name "$s-*" | sort | head -n 1)
		ov="$t/overlay"
		mkdir -p "$ov/upper" "$ov/work" "$ov/root"
		mount -t overlay debship-bench -o "lowerdir=$base,upperdir=$ov/upper,workdir=$ov/work" "$ov/root"
		mounted+=("$ov/root")
		mount -t proc debship-bench "$ov/root/proc"
		mounted+=("$ov/root/proc")
		cp /etc/resolv.conf "$ov/root/etc/resolv.conf"
		chroot "$ov/root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			dh-virtualenv debhelper dh-python python3-venv python3-pip-whl python3-setuptools-whl python3-wheel-whl fakeroot >"$t/apt.log" 2>&1
		root="$ov/root"
	fi
	dhv="$root/bench-$target"
	mkdir -p "$dhv"
	cp -r examples/hello-web "$dhv/src"
	cp -r bench/dh-virtualenv/debian "$dhv/src/debian"
	# The control file pins the interpreter the venv is made with, as a
	# dh-virtualenv maintainer writes it by hand: that release's python3.
	py=$(${root:+chroot "$root"} /usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	next="${py%.*}.$((${py#*.} + 1))"
	sed -i "s/python3 (>= [0-9.]*), python3 (<< [0-9.]*)/python3 (>= $py), python3 (<< $next)/" "$dhv/src/debian/control"
	dh_build() {
		if [ -n "$root" ]; then
			chroot "$root" sh -c "cd /bench-$target/src && SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH dpkg-buildpackage -us -uc -b -d"
		else
			(cd "$dhv/src" && dpkg-buildpackage -us -uc -b -d)
		fi
	}
	t_ds=() t_dh=()
	for i in $(seq "$RUNS"); do
		rm -rf "$t/out"
		st=$(now)
		"$DEBSHIP" build "$t/src-debship" --output "$t/out" --no-index --target "$target" >/dev/null 2>&1
		t_ds+=("$(echo "$(now) - $st" | bc)")
		rm -f "$dhv"/*.deb "$dhv"/*.buildinfo "$dhv"/*.changes
		st=$(now)
		dh_build >"$t/dh.log" 2>&1
		t_dh+=("$(echo "$(now) - $st" | bc)")
		if [ -n "$root" ]; then
			chroot "$root" sh -c "cd /bench-$target/src && fakeroot debian/rules clean" >/dev/null 2>&1 || true
		else
			(cd "$dhv/src" && fakeroot debian/rules clean >/dev/null 2>&1) || true
		fi
	done
	ds_deb=$(ls "$t"/out/*.deb)
	dh_deb=$(ls "$dhv"/hello-web_*.deb)
	# That release's lintian: the host's, or the one in its root.
	lint() {
		local out
		if [ -n "$root" ]; then
			cp "$1" "$root/tmp/lint.deb"
			out=$(chroot "$root" lintian /tmp/lint.deb 2>/dev/null || true)
		else
			out=$(lintian "$1" 2>/dev/null || true)
		fi
		printf '%s\n' "$out" | awk '/^E: /{e++} /^W: /{w++} END {printf "%d E / %d W", e, w}'
	}
	m_ds=$(median "${t_ds[@]}")
	m_dh=$(median "${t_dh[@]}")
	printf '\n%s (%s, Python %s)\n\n' "$target" "$s" "$py"
	printf '| | debship | dh-virtualenv | ratio |\n|---|---|---|---|\n'
	printf '| wall time, median of %d (s) | %.2f | %.2f | %.1f× faster |\n' "$RUNS" "$m_ds" "$m_dh" "$(echo "$m_dh / $m_ds" | bc -l)"
	printf '| all runs (s) | %s | %s | |\n' "$(printf '%.2f ' "${t_ds[@]}")" "$(printf '%.2f ' "${t_dh[@]}")"
	printf '| .deb | %s | %s | |\n' "$(basename "$ds_deb")" "$(basename "$dh_deb")"
	printf '| .deb size (bytes) | %d | %d | %.0f× smaller |\n' "$(size "$ds_deb")" "$(size "$dh_deb")" "$(echo "$(size "$dh_deb") / $(size "$ds_deb")" | bc -l)"
	printf '| Installed-Size (KiB) | %d | %d | %.0f× smaller |\n' "$(isz "$ds_deb")" "$(isz "$dh_deb")" "$(echo "$(isz "$dh_deb") / $(isz "$ds_deb")" | bc -l)"
	printf '| lintian (%s'"'"'s) | %s | %s | |\n' "$s" "$(lint "$ds_deb")" "$(lint "$dh_deb")"
done
printf '\nload average: %s; %s cores\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)"
