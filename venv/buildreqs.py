# Run by debship with the build interpreter in the project directory: exits
# 0 when the interpreter's own packages satisfy the project's
# [build-system] requires, so that the wheel can be built without pip's
# isolated build environment (about 2 s faster, and fully offline, like
# dh-python building with Debian's setuptools). Otherwise it prints the
# first requirement that is not met and exits 1.
import importlib.metadata
import sys

try:
    import tomllib
    from pip._vendor.packaging.requirements import Requirement
except ImportError as e:  # Python < 3.11 or no pip: let pip isolate
    print(e)
    sys.exit(1)

with open("pyproject.toml", "rb") as f:
    system = tomllib.load(f).get("build-system")
if not system or "build-backend" not in system:
    print("no build-backend: pip's legacy path decides")
    sys.exit(1)
for text in system.get("requires", []):
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate():
        continue
    try:
        have = importlib.metadata.version(req.name)
    except importlib.metadata.PackageNotFoundError:
        print(text)
        sys.exit(1)
    if not req.specifier.contains(have, prereleases=True):
        print("%s (have %s)" % (text, have))
        sys.exit(1)
