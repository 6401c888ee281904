# facts.sh: what debship deploy reads on a node before it changes anything.
# Read-only: prints key=value lines and one "deb SHA256 VERSION FILE" line
# per cached .deb of the app (the versions a rollback can go back to).
pkg={{quote .Package}}
cache={{quote .Cache}}
unit={{quote .Unit}}
printf 'installed=%s\n' "$(dpkg-query -W -f='${db:Status-Abbrev} ${Version}\n' "$pkg" 2>/dev/null | awk '$1=="ii"{print $2}')"
printf 'dpkg_status=%s\n' "$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null | tr -d ' ')"
# Packages dpkg left half-installed or half-configured: an install on top
# of them fails in confusing ways.
printf 'audit=%s\n' "$(dpkg --audit 2>/dev/null | grep -c '^ ' || true)"
d=$cache
while [ ! -d "$d" ]; do d=$(dirname "$d"); done
printf 'free_kb=%s\n' "$(df -Pk "$d" | awk 'NR==2{print $4}')"
printf 'unit=%s\n' "$(systemctl is-active "$unit" 2>/dev/null || true)"
printf 'arch=%s\n' "$(dpkg --print-architecture)"
printf 'release=%s\n' "$(sed -n 's/^VERSION_ID=//p' /etc/os-release | tr -d '"')"
command -v iptables >/dev/null 2>&1 && echo iptables=yes || echo iptables=no
command -v curl >/dev/null 2>&1 && echo curl=yes || echo curl=no
for f in "$cache"/*.deb; do
	[ -f "$f" ] || continue
	[ "$(dpkg-deb -f "$f" Package 2>/dev/null)" = "$pkg" ] || continue
	printf 'deb %s %s %s\n' "$(sha256sum "$f" | cut -d' ' -f1)" "$(dpkg-deb -f "$f" Version)" "$f"
done
exit 0
