"""All SQL lives in this package: migrations, the hook cache, and the admin queries."""

from worker.store.cache import HookCache
from worker.store.db import connect, wait_for_database
from worker.store.migrate import migrate

__all__ = ["HookCache", "connect", "migrate", "wait_for_database"]
