import json, importlib.resources
from fastapp import _speed
import helperlib

def main():
    data = json.loads(importlib.resources.files("fastapp").joinpath("data/defaults.json").read_text())
    print("crc", _speed.crc("hello"), "k", data["k"], helperlib.greet())

def admin():
    print("admin")
