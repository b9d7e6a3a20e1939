#!/usr/bin/env python3
"""Reads AddressSanitizer / LeakSanitizer logs (ASAN_OPTIONS=log_path=...) and says which
reports are Backdrop's.

Any AddressSanitizer error (overflow, use after free, ...) fails: only instrumented code (the
plugin, its Rust dependencies and the host) reports them. A leak is the plugin's when its
innermost frame that is not an allocator or Rust's standard library is in obs-backdrop.so or one
of the plugin's crates (obs_backdrop, backdrop_core, backdrop_obs); leaks of libobs, Mesa, ONNX
Runtime and the loader are counted, not judged.

Usage: asan_report.py LOG...   (exit 1 on an error or a leak of the plugin's)
"""
import re
import sys

ALLOC = ("malloc", "calloc", "realloc", "strdup", "strndup", "memalign", "posix_memalign",
         "aligned_alloc", "operator new", "__interceptor_")
STD = ("alloc::", "core::", "std::", "hashbrown::", "<alloc::", "<core::", "<std::",
       "__rust", "__rdl", "__rg")
PLUGIN = ("obs_backdrop", "backdrop_core", "backdrop_obs")


def owner(frames):
    for fn, where in frames:
        if fn.startswith(ALLOC) or "asan_" in where:
            continue
        # Rust's standard library (its sources are under /rustc/), unless generic over ours
        if (fn.startswith(STD) or "/rustc/" in where) and "backdrop" not in fn:
            continue
        if "obs-backdrop.so" in where or any(p in fn for p in PLUGIN):
            return "plugin"
        if "backdrop_host" in fn or "backdrop_render" in fn:
            return "host"
        return "other"
    return "other"


def main(paths):
    errors, counts, plugin_leaks = [], {}, []
    for path in paths:
        text = open(path, errors="replace").read()
        for m in re.finditer(r"ERROR: AddressSanitizer: (.*)", text):
            errors.append(f"{path}: {m.group(1)}")
        for block in re.split(r"\n(?=(?:Direct|Indirect) leak of )", text):
            head = re.match(r"(Direct|Indirect) leak of (\d+) byte", block)
            if not head:
                continue
            frames = []
            for line in block.splitlines()[1:]:
                line = line.strip()
                if not line.startswith("#"):
                    break
                parts = line.split(" in ", 1)
                fn = parts[1].split(" /")[0].split(" (")[0] if len(parts) == 2 else ""
                frames.append((fn, line))
            who = owner(frames)
            counts[who] = counts.get(who, 0) + int(head.group(2))
            if who == "plugin":
                plugin_leaks.append(block.strip()[:1500])
    for who in ("plugin", "host", "other"):
        print(f"[asan] leaks, {who}: {counts.get(who, 0)} bytes")
    for e in errors:
        print(f"[asan] error: {e}")
    for b in plugin_leaks:
        print(f"[asan] plugin leak:\n{b}")
    return 1 if errors or plugin_leaks else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
