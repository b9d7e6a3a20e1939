"""server.py PORT PAGE OUTDIR: serves PAGE at /page.html on 127.0.0.1 and takes the page's one
POST /result (JSON: devices, track settings, frames as PNG data URLs); writes OUTDIR/frame_N.png
and OUTDIR/result.json (frames left out), then exits."""
import base64
import http.server
import json
import os
import sys

port, page, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = open(page, "rb").read()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        for i, url in enumerate(data.pop("frames", [])):
            with open(os.path.join(out, f"frame_{i}.png"), "wb") as f:
                f.write(base64.b64decode(url.split(",", 1)[1]))
        tmp = os.path.join(out, "result.json.tmp")
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, os.path.join(out, "result.json"))
        self.send_response(204)
        self.end_headers()
        raise SystemExit(0)


http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
