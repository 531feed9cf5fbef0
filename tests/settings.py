"""Test settings: the real settings, with fast hashing, in-process task execution and a mail outbox."""

from portal.settings import *  # noqa: F403
from portal.settings import Q_CLUSTER

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SMS_BACKEND = "portal.sms.LocmemSmsBackend"
# Tasks enqueued with async_task run inline, so a test sees their effect without a worker.
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Throttle counters: this process's memory, never a shared Redis, emptied before each test (conftest.py).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Rate-limit buckets in the test database unless a test asks for Redis (tests/locks/test_rate_limits.py).
RATE_LIMIT_STORE = "database"
