#!/bin/bash
# Builds examples/hello-web with debship and with dh-virtualenv
# (dpkg-buildpackage -b on the debian/ folder in bench/dh-virtualenv), in the
# same run, interleaved, RUNS times each, and prints a table: wall time,
# .deb size, Installed-Size, lintian counts, and the ratios. Not a test.
# Needs: make build; apt-get install dh-virtualenv debhelper dh-python lintian
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DEBSHIP=${DEBSHIP:-$PWD/bin/debship}
[ -x "$DEBSHIP" ] || make build >/dev/null
for c in dpkg-buildpackage dh_virtualenv lintian; do
	command -v $c >/dev/null || { echo "bench: $c missing; apt-get install dh-virtualenv debhelper dh-python lintian" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r examples/hello-web "$work/src-debship"
cp -r examples/hello-web "$work/src-dhv"
cp -r bench/dh-virtualenv/debian "$work/src-dhv/debian"
export SOURCE_DATE_EPOCH=1770116400

now() { date +%s.%N; }
declare -a t_ds t_dh
for i in $(seq "$RUNS"); do
	rm -rf "$work/out"; s=$(now)
	"$DEBSHIP" build "$work/src-debship" --output "$work/out" --no-index >/dev/null 2>&1
	t_ds+=("$(echo "$(now) - $s" | bc)")
	rm -f "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes; s=$(now)
	(cd "$work/src-dhv" && dpkg-buildpackage -us -uc -b >/dev/null 2>&1)
	t_dh+=("$(echo "$(now) - $s" | bc)")
	(cd "$work/src-dhv" && fakeroot debian/rules clean >/dev/null 2>&1 || true)
done
ds_deb=$(ls "$work"/out/*.deb); dh_deb=$(ls "$work"/hello-web_*.deb)
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
lint() { lintian "$1" 2>/dev/null | awk '/^E: /{e++} /^W: /{w++} END {printf "%d E / %d W", e, w}'; }
size() { stat -c %s "$1"; }
isz() { dpkg-deb --field "$1" Installed-Size; }
m_ds=$(median "${t_ds[@]}"); m_dh=$(median "${t_dh[@]}")
printf '| | debship | dh-virtualenv | ratio |\n|---|---|---|---|\n'
printf '| wall time, median of %d (s) | %.2f | %.2f | %.1f× faster |\n' "$RUNS" "$m_ds" "$m_dh" "$(echo "$m_dh / $m_ds" | bc -l)"
printf '| all runs (s) | %s | %s | |\n' "$(printf '%.2f ' "${t_ds[@]}")" "$(printf '%.2f ' "${t_dh[@]}")"
printf '| .deb size (bytes) | %d | %d | %.0f× smaller |\n' "$(size "$ds_deb")" "$(size "$dh_deb")" "$(echo "$(size "$dh_deb") / $(size "$ds_deb")" | bc -l)"
printf '| Installed-Size (KiB) | %d | %d | %.0f× smaller |\n' "$(isz "$ds_deb")" "$(isz "$dh_deb")" "$(echo "$(isz "$dh_deb") / $(isz "$ds_deb")" | bc -l)"
printf '| lintian | %s | %s | |\n' "$(lint "$ds_deb")" "$(lint "$dh_deb")"
printf '\nload average: %s; %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc) cores"
