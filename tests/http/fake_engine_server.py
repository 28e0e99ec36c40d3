"""A stand-in for a model server process (vLLM's or llama.cpp's) in tests of `thinkchain serve`.

Run as a script.  It serves ``GET /v1/models`` on ``--port`` like an OpenAI-compatible server,
records its command line, and can misbehave on purpose: exit before it is ready, ignore the
signals that ask it to stop, start children (in its process group, or in a session of their own
as Ray's processes do).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--served-model-name", default="fake-engine-model")
    parser.add_argument("--fake-exit-early", type=int, default=None)
    parser.add_argument("--fake-ignore-stop", action="store_true")
    parser.add_argument("--fake-child", action="store_true")
    parser.add_argument("--fake-detached-child", action="store_true")
    parser.add_argument("--fake-delay", type=float, default=0.0)
    args, _unknown = parser.parse_known_args()

    record = os.environ.get("FAKE_ENGINE_RECORD")
    if record:
        with open(record, "w") as fh:
            json.dump({"argv": sys.argv[1:], "pid": os.getpid()}, fh)
    print("fake engine: loading the model", flush=True)
    if args.fake_exit_early is not None:
        print("fake engine: CUDA out of memory", flush=True)
        sys.exit(args.fake_exit_early)
    if args.fake_child:
        subprocess.Popen(SLEEPER)
    if args.fake_detached_child:
        subprocess.Popen(SLEEPER, start_new_session=True)
    if args.fake_ignore_stop:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    time.sleep(args.fake_delay)

    name = args.served_model_name

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *a: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/") != "/v1/models":
                self.send_error(404)
                return
            body = json.dumps({"object": "list", "data": [{"id": name, "object": "model"}]})
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"fake engine: listening on {args.host}:{args.port}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        print("fake engine: shutting down", flush=True)


if __name__ == "__main__":
    main()
