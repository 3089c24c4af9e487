"""The service URLs of the settings: a cluster's AMQP nodes, a database's hosts (issue 14).

Pure: parsing and showing only, no connection. Every text made here for a log line, an error
or a repr names hosts and ports, never a user's password.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

AMQP_SCHEMES = ("amqp", "amqps")
DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671, "postgresql": 5432, "postgres": 5432}


def amqp_nodes(text: str) -> tuple[str, ...]:
    """`QUEUE_HOOKS_AMQP_URL`: one URL, or the comma-separated URLs of one cluster's nodes.

    Each is checked here, so a typo stops the worker at start with which one is wrong
    (by its place and host, never its password) rather than as a connection that never
    succeeds."""
    urls = tuple(part.strip() for part in text.split(",") if part.strip())
    if not urls:
        raise ValueError("no AMQP URL given")
    for number, url in enumerate(urls, 1):
        problem = _amqp_problem(url)
        if problem:
            raise ValueError(f"AMQP URL #{number} ({where(url)}): {problem}")
    return urls


def _amqp_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in AMQP_SCHEMES:
        return f"the scheme must be amqp:// or amqps://, not {parts.scheme or 'none'}"
    if not parts.hostname:
        return "no host"
    return None


def where(url: str) -> str:
    """`host:port` of one URL (its default port when it names none); `?` when unreadable."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return "?"
    host = parts.hostname or "?"
    return f"{host}:{port}" if port else host


def check_database_url(text: str) -> str:
    """`QUEUE_HOOKS_DATABASE_URL`, checked as far as a typo shows without connecting: the
    scheme and every port (a host's, or the query's `port=`). The client refused these only
    when it connected, a port that is no number with a bare ValueError (a traceback)."""
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ValueError(f"not a database URL ({exc})") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(
            f"the scheme must be postgresql:// or postgres://, not {parts.scheme or 'none'}"
        )
    hosts = parts.netloc.rpartition("@")[2]
    ports = [_split_host(host)[1] for host in hosts.split(",")]
    for key, _, value in (pair.partition("=") for pair in parts.query.split("&")):
        if key == "port":
            ports += unquote(value).split(",")
    for port in ports:
        if port and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"port {port!r} is not a port number (1 to 65535)")
    return text


def _split_host(host: str) -> tuple[str, str]:
    """(name, port) of one `host[:port]` of a libpq URL; the port "" when none is written."""
    has_port = host.rfind(":") > host.rfind("]")  # [::1] alone has colons but no port
    name, _, port = host.rpartition(":") if has_port else (host, "", "")
    return name, port


def database_hosts(dsn: str) -> str:
    """`h1:p1,h2:p2` of a libpq URL, multi-host or not (`postgresql://u:pw@h1:p1,h2:p2/db`)."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "?"
    hosts = parts.netloc.rpartition("@")[2]
    shown = []
    for host in hosts.split(","):
        name, port = _split_host(host)
        shown.append(f"{name or 'localhost'}:{port or 5432}")
    return ",".join(shown)


def password_of(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def without_password(url: str) -> str:
    """A URL as the admin API shows it: a password in it starred out (contract §8: a schema
    is listed "never a secret"; a `https://user:pw@crm/` URL carries one)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return url
    userinfo, _, hosts = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{hosts}"))


def scrub(text: str, *urls: str) -> str:
    """`text` (a library's error, say) with the passwords of `urls` starred out."""
    for url in urls:
        password = password_of(url)
        if password:
            text = text.replace(password, "***")
    return text
