"""Bench settings: the real settings with the ORM broker (tasks are enqueued, as in production)."""

import os

from portal.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = {"version": 1, "disable_existing_loggers": True, "root": {"level": "ERROR"}}
ROOT_URLCONF = "bench.urls"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1"]

# The bench's own queue name, so a bench run's worker never takes another process's tasks on a shared
# Redis (bench/latency.py sets it for its qcluster subprocesses); django-q quiet, as the bench prints one
# line per target.
Q_CLUSTER = {**Q_CLUSTER, "name": os.environ.get("BENCH_Q_NAME", Q_CLUSTER["name"]),  # noqa: F405
             "log_level": "WARNING"}
