"""``python -m apps.api``: run the API with a production server on any platform.

gunicorn (Linux, macOS) forks worker processes, which Windows cannot do; there the
same app runs under waitress, a pure-Python server with worker threads.
"""

import argparse
import os
import signal
import sys


def _stop(signum, frame):
    """Treat SIGTERM as Ctrl-C: waitress then stops serving and returns."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Parse options and hand over to gunicorn or waitress."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("API_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("API_PORT", "8000")))
    default_server = "waitress" if os.name == "nt" else "gunicorn"
    parser.add_argument("--server", choices=["gunicorn", "waitress"], default=default_server)
    args = parser.parse_args(argv)
    if args.server == "waitress":
        from waitress import serve

        from apps.api.config import keys_configured
        from apps.api.extensions import shutdown, start
        from apps.api.security import warn_if_open
        from apps.api.wsgi import app

        warn_if_open([args.host], keys_configured(app.config))
        for name in ("SIGTERM", "SIGBREAK"):  # stop as on Ctrl-C: waitress then returns
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), _stop)
        try:
            start(app)  # what extensions run beside the requests (notebook 08's watcher)
            threads = int(os.environ.get("API_THREADS", "4"))
            # Forwarding headers reach the app, which believes them only from a trusted
            # proxy (apps/api/extensions/forwarded.py, notebook 09), as under gunicorn.
            serve(
                app,
                host=args.host,
                port=args.port,
                threads=threads,
                clear_untrusted_proxy_headers=False,
            )
        finally:
            shutdown(app)  # finish what extensions queued (the prediction log)
        return 0
    os.environ["API_BIND"] = f"{args.host}:{args.port}"
    from gunicorn.app.wsgiapp import run

    sys.argv = ["gunicorn", "-c", "python:apps.api.gunicorn_conf", "apps.api.wsgi:app"]
    run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
