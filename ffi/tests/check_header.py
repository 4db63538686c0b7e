#!/usr/bin/env python3
"""Fails unless include/npmk.h and the libraries agree.

Usage: check_header.py HEADER LIBNPMK_SO LIBNPMK_A CARGO_TOML

* the functions the header declares are exactly the npmk_* functions both libraries export;
* the shared library exports nothing else (no stray Rust symbols);
* the header's version macros equal the workspace version in Cargo.toml.
"""
import re
import subprocess
import sys


def header_functions(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return set(re.findall(r"\b(npmk_[a-z0-9_]+)\s*\(", text))


def exported_dynamic(so):
    out = subprocess.run(["nm", "-D", "--defined-only", so], check=True, capture_output=True,
                         text=True).stdout
    return {f[2] for f in (line.split() for line in out.splitlines()) if len(f) == 3
            and f[1] == "T"}


def exported_static(archive):
    # readelf, not nm: Rust objects embed LLVM bitcode, which nm's LTO plugin may fail to read
    # (and then reports "no symbols").
    out = subprocess.run(["readelf", "-sW", archive], check=True, capture_output=True,
                         text=True).stdout
    return {f[7] for f in (line.split() for line in out.splitlines()) if len(f) >= 8
            and f[3] == "FUNC" and f[4] == "GLOBAL" and f[6] != "UND"}


def main():
    header, so, a, cargo = sys.argv[1:5]
    text = open(header, encoding="utf-8").read()
    declared = header_functions(text)
    dynamic = exported_dynamic(so)
    static = {s for s in exported_static(a) if s.startswith("npmk_")}
    errors = []
    for name, syms in (("libnpmk.so", {s for s in dynamic if s.startswith("npmk_")}),
                       ("libnpmk.a", static)):
        for s in sorted(declared - syms):
            errors.append(f"{s}: declared in npmk.h, not exported by {name}")
        for s in sorted(syms - declared):
            errors.append(f"{s}: exported by {name}, not declared in npmk.h")
    for s in sorted(s for s in dynamic if not s.startswith("npmk_")):
        errors.append(f"{s}: libnpmk.so exports a symbol outside the npmk_ namespace")

    macros = {k: v for k, v in re.findall(r"#define NPMK_VERSION_(\w+) (\S+)", text)}
    built = f"{macros['MAJOR']}.{macros['MINOR']}.{macros['PATCH']}"
    m = re.search(r'\[workspace\.package\][^\[]*?\nversion = "([^"]+)"', open(cargo).read())
    if not m or m.group(1) != built or macros["STRING"] != f'"{built}"':
        errors.append(f"npmk.h says {built} / {macros['STRING']}, Cargo.toml "
                      f"{m.group(1) if m else 'no version'}")
    if errors or not declared:
        sys.exit("check_header: " + ("\n  ".join(errors) or "no functions found in the header"))
    print(f"check_header: {len(declared)} functions declared = exported by both libraries; "
          f"version {built}")


if __name__ == "__main__":
    main()
