"""A WSGI app for gunicorn, which takes tend's socket by systemd socket
activation (LISTEN_FDS) on its own:

    tend start "gunicorn --workers 2 wsgi:app" --cwd examples/python -i 2 --port 8000
"""
import os


def app(environ, start_response):
    body = f"hello from gunicorn pid {os.getpid()} (tend instance {os.environ.get('TEND_INSTANCE')})\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
