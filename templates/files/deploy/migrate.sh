# migrate.sh: the package's migration, started by debship deploy once per
# deploy on the first updated node, after its install and before it takes
# traffic, and by cluster apply once on the first install, before the app's
# resource exists. The unit (shipped by the .deb when [tool.debship] migrate is
# set) runs as the service's user with its environment; a package without
# one prints migration=none. Prints key=value lines, then the run's output.
unit={{quote .Unit}}
if [ "$(systemctl show -p LoadState --value "$unit" 2>/dev/null)" != loaded ] ||
	[ -z "$(systemctl show -p FragmentPath --value "$unit" 2>/dev/null)" ]; then
	echo migration=none
	exit 0
fi
since=$(date '+%Y-%m-%d %H:%M:%S')
systemctl reset-failed "$unit" >/dev/null 2>&1 || true
if systemctl start "$unit" >/dev/null 2>&1; then rc=0; else rc=$?; fi
# A failed oneshot stays loaded with its invocation; a successful one may be
# unloaded at once, so its output is found by the unit and the time instead
# (_SYSTEMD_UNIT: the migration's own output, not systemd's lines about it).
id=$(systemctl show -p InvocationID --value "$unit" 2>/dev/null)
echo migration=ran
echo "rc=$rc"
echo "status=$(systemctl show -p ExecMainStatus --value "$unit" 2>/dev/null)"
journalctl --sync >/dev/null 2>&1 || true
echo -- output
if [ -n "$id" ]; then
	journalctl --no-pager -q -o cat _SYSTEMD_INVOCATION_ID="$id" 2>/dev/null | tail -n {{.Lines}}
else
	journalctl --no-pager -q -o cat _SYSTEMD_UNIT="$unit" --since "$since" 2>/dev/null | tail -n {{.Lines}}
fi
exit 0
