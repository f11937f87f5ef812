"""A PEP 517 build backend for this one pure-Python package, standard library only: a wheel is a
zip of the afcluster/ directory and its metadata (PEP 427, core metadata 2.1); an sdist is a
tar.gz of the project. Metadata comes from pyproject.toml's [project] table."""
import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "afcluster"


def _project():
    text = open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8").read()
    try:
        import tomllib
        return tomllib.loads(text)["project"]
    except ImportError:  # Python < 3.11: the few keys this file uses
        section = text.split("[project]", 1)[1].split("\n[", 1)[0]
        keys = dict(re.findall(r'^(\w[\w-]*) = "([^"]*)"', section, re.M))
        scripts = dict(re.findall(r'^([\w-]+) = "([^"]*)"', text.split("[project.scripts]", 1)[1], re.M)) if "[project.scripts]" in text else {}
        return dict(keys, scripts=scripts)


def _metadata(p):
    lines = ["Metadata-Version: 2.1", f"Name: {p['name']}", f"Version: {p['version']}", f"Summary: {p.get('description', '')}",
             f"Requires-Python: {p.get('requires-python', '>=3.8')}", "License: MIT"]
    readme = os.path.join(ROOT, "README.md")
    if os.path.exists(readme):
        lines += ["Description-Content-Type: text/markdown", "", open(readme, encoding="utf-8").read()]
    return "\n".join(lines) + "\n"


def _files():
    for base, _dirs, names in os.walk(os.path.join(ROOT, PACKAGE)):
        for n in sorted(names):
            if n.endswith(".py"):
                full = os.path.join(base, n)
                yield os.path.relpath(full, ROOT).replace(os.sep, "/"), open(full, "rb").read()


def _digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _wheel(wheel_directory, editable=False):
    p = _project()
    name, version = p["name"], p["version"]
    dist_info = f"{name}-{version}.dist-info"
    entries = [(f"{name}.pth", (ROOT + "\n").encode())] if editable else list(_files())
    entries.append((f"{dist_info}/METADATA", _metadata(p).encode()))
    entries.append((f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: afcluster-backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"))
    scripts = p.get("scripts", {})
    if scripts:
        entries.append((f"{dist_info}/entry_points.txt", ("[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in scripts.items())).encode()))
    record = "".join(f"{path},{_digest(data)},{len(data)}\n" for path, data in entries) + f"{dist_info}/RECORD,,\n"
    filename = f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in entries:
            z.writestr(path, data)
        z.writestr(f"{dist_info}/RECORD", record)
    return filename


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, editable=True)


def build_sdist(sdist_directory, config_settings=None):
    p = _project()
    base = f"{p['name']}-{p['version']}"
    filename = f"{base}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as t:
        for rel in ["pyproject.toml", "README.md", "_build/backend.py"] + [path for path, _ in _files()]:
            t.add(os.path.join(ROOT, rel), arcname=f"{base}/{rel}")
        info = _metadata(p).encode()
        ti = tarfile.TarInfo(f"{base}/PKG-INFO")
        ti.size = len(info)
        t.addfile(ti, io.BytesIO(info))
    return filename


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []
