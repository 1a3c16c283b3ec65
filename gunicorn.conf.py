"""gunicorn settings for production: ``gunicorn -c gunicorn.conf.py app:app``.

Each worker is a gevent worker that imports ``app.py`` (which patches the standard
library first), then starts its own background services: an executor pool, the log
writer and the outbox dispatcher. Put Caddy in front (see Caddyfile) and set
PICLOUD_PROXY_COUNT=1 so client addresses and HTTPS are taken from the proxy.
"""
import multiprocessing
import os

bind = os.environ.get("PICLOUD_BIND", "127.0.0.1:8080")
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", max(1, min(4, multiprocessing.cpu_count()))))
worker_connections = 1000
# A request may run a script for up to PICLOUD_MAX_TIMEOUT_SECONDS (60 by default).
timeout = 90
graceful_timeout = 75
keepalive = 5
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
# Only the local proxy may set X-Forwarded-*; PiCloud itself honours PICLOUD_PROXY_COUNT.
forwarded_allow_ips = "127.0.0.1,::1"


def post_worker_init(worker):
    from picloud.services import services

    services(worker.wsgi).start()


def worker_exit(server, worker):
    from picloud.services import services

    app = getattr(worker, "wsgi", None)
    if app is not None:
        services(app).stop(graceful_timeout - 5)
