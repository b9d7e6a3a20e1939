#!/usr/bin/env python3
"""Reads a valgrind memcheck XML file (--xml=yes) and says which errors are Backdrop's.

An error is the plugin's when the innermost frame that is not an allocator, a libc copy or
string function or Rust's standard library (alloc, core, std, hashbrown) lies in obs-backdrop.so or in
one of the plugin's crates (obs_backdrop, backdrop_core, backdrop_obs); the host's own
(backdrop_host, the test program) are listed apart. Everything else (libobs, Mesa, ONNX
Runtime, the dynamic loader) is counted but not judged. "Possibly lost" blocks and still
reachable memory are not errors.

Usage: valgrind_report.py FILE.xml   (exit 1 when the plugin has an error)
"""
import sys
import xml.etree.ElementTree as ET

SKIP_OBJ = ("vgpreload_",)
SKIP_FN = ("malloc", "calloc", "realloc", "free", "memalign", "posix_memalign", "strdup",
           "strndup", "memcpy", "memmove", "memset", "__memcpy_chk", "operator new")
STD_FILES = ("library/alloc/", "library/core/", "library/std/", "src/raw/", "src/map.rs")
PLUGIN = ("obs_backdrop", "backdrop_core", "backdrop_obs")


def owner(frames):
    """Who did it: 'plugin', 'host' or 'other', from the innermost frame that is not plumbing."""
    for f in frames:
        obj = (f.findtext("obj") or "").rsplit("/", 1)[-1]
        fn = f.findtext("fn") or ""
        path = (f.findtext("dir") or "") + "/" + (f.findtext("file") or "")
        if obj.startswith(SKIP_OBJ) or (obj.startswith("libc.so") and fn.startswith(SKIP_FN)):
            continue
        if any(s in path for s in STD_FILES) and "backdrop" not in path:
            continue
        if obj == "obs-backdrop.so" or any(fn.startswith(p) or f"<{p}::" in fn for p in PLUGIN):
            return "plugin"
        if "backdrop_host" in fn or "backdrop_render" in fn:
            return "host"
        return "other"
    return "other"


def main(path):
    root = ET.parse(path).getroot()
    counts, plugin_errors = {}, []
    for e in root.iter("error"):
        kind = e.findtext("kind")
        if kind in ("Leak_PossiblyLost", "Leak_StillReachable"):
            continue
        who = owner(e.find("stack").findall("frame"))
        counts[(who, kind)] = counts.get((who, kind), 0) + 1
        if who == "plugin":
            what = e.findtext("what") or e.findtext("xwhat/text") or kind
            stack = [(f.findtext("fn") or "?") for f in e.find("stack").findall("frame")[:8]]
            plugin_errors.append(f"{kind}: {what}\n      " + "\n      ".join(stack))
    for who in ("plugin", "host", "other"):
        kinds = {k: n for (w, k), n in counts.items() if w == who}
        total = sum(kinds.values())
        detail = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none"
        print(f"[valgrind] {who}: {total} error(s) ({detail})")
    for text in plugin_errors:
        print("[valgrind] plugin error:", text)
    return 1 if plugin_errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
