#!/usr/bin/env python3
"""embed_file.py IN OUT NAME — writes OUT, a C header defining
`static const char NAME[]` with the bytes of IN, so the router serves a file
(the dashboard) without reading anything from disk at run time."""
import sys

src, out, name = sys.argv[1:4]
data = open(src, "rb").read()
lines = []
for i in range(0, len(data), 96):
    chunk = data[i:i + 96]
    lines.append('  "' + "".join("\\x%02x" % b for b in chunk) + '"')
with open(out, "w") as f:
    f.write("/* generated from %s by router/embed_file.py; do not edit */\n" % src.split("/")[-1])
    f.write("static const char %s[] =\n%s;\n" % (name, "\n".join(lines) if lines else '  ""'))
