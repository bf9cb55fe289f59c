"""A plain standard-library HTTP server that tend runs as a cluster.

Under tend's socket mode it serves the shared port it receives as fd 3
(systemd socket activation: LISTEN_FDS, LISTEN_PID). Started alone, or
under proxy mode, it listens on $PORT.

    tend start examples/python/app.py -i 2 --port 8000
    tend start examples/python/app.py -i 2 --port 8000 --exec-mode proxy
"""
import http.server
import os
import socket


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from python pid {os.getpid()} (instance {os.environ.get('TEND_INSTANCE')})\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


def listening_socket():
    if os.environ.get("LISTEN_PID") == str(os.getpid()) and int(os.environ.get("LISTEN_FDS", "0")) >= 1:
        for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(k, None)
        return socket.socket(fileno=3)
    s = socket.create_server(("127.0.0.1", int(os.environ.get("PORT", "8000"))))
    return s


class Server(http.server.ThreadingHTTPServer):
    def __init__(self, sock):
        super().__init__(sock.getsockname()[:2], Handler, bind_and_activate=False)
        self.socket = sock


if __name__ == "__main__":
    sock = listening_socket()
    sock.setblocking(True)
    print(f"pid {os.getpid()} serving on port {sock.getsockname()[1]}", flush=True)
    Server(sock).serve_forever()
