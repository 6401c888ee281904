# Run by debship with the interpreter it is about to build a virtualenv
# with. It prints one JSON object on stdout and must work even when optional
# modules (venv, ensurepip, pip) are missing, so every check is guarded.
import importlib.util
import json
import os
import platform
import sys
import sysconfig


def has(name):
    try:
        return importlib.util.find_spec(name) is not None
    except Exception:
        return False


def pip_version():
    if not has("pip"):
        return ""
    try:
        import pip

        return pip.__version__
    except Exception:
        return ""


stdlib = sysconfig.get_path("stdlib") or ""
print(
    json.dumps(
        {
            "version": "%d.%d" % sys.version_info[:2],
            "full_version": platform.python_version(),
            "executable": sys.executable,
            "base_executable": getattr(sys, "_base_executable", sys.executable),
            "in_venv": sys.prefix != sys.base_prefix,
            "venv": has("venv"),
            # Debian moves ensurepip into python3.X-venv; the venv module itself
            # stays in libpython3.X-stdlib, so test the files, not the import.
            "ensurepip": os.path.exists(os.path.join(stdlib, "ensurepip", "__main__.py")),
            "pip": pip_version(),
        }
    )
)
