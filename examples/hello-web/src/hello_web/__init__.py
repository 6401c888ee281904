"""hello-web: a tiny WSGI site packaged by debship."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hello-web")
except PackageNotFoundError:  # running from a source checkout
    __version__ = "0+unknown"
