#!/usr/bin/env python3
"""A plain static file server on loopback for the storage benchmark's baseline: GET serves
files under ROOT (Python's own SimpleHTTPRequestHandler), PUT writes the body to the path
and fsyncs it, as bai's proxy does on completing an upload. HTTP/1.1 keep-alive.

usage: static_file_server.py PORT_FILE ROOT   (writes the port it bound to PORT_FILE)
"""
import http.server
import os
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms delayed-ACK stall

    def log_message(self, *args):  # quiet: the benchmark reads timings, not logs
        pass

    def do_PUT(self):
        path = self.translate_path(self.path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        remaining = int(self.headers.get("Content-Length", "0"))
        with open(path, "wb") as out:
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                out.write(chunk)
                remaining -= len(chunk)
            out.flush()
            os.fsync(out.fileno())
        self.send_response(201 if remaining == 0 else 400)
        self.send_header("Content-Length", "0")
        self.end_headers()


def main():
    port_file, root = sys.argv[1], sys.argv[2]
    os.chdir(root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
