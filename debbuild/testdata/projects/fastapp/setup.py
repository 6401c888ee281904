from setuptools import Extension, setup
setup(ext_modules=[Extension("fastapp._speed", ["src/fastapp/_speed.c"], libraries=["z"])])
