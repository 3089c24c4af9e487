"""queue-hooks: queue events from RabbitMQ to signed HTTP calls, with retries and dead letters."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("queue-hooks")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
