"""Typed, validated process settings: command-line flags with ``CLIPPER_<FLAG>`` env defaults.

The only module that reads ``os.environ`` (it is handed in, so tests pass a dict). Each process
has one frozen ``Settings`` class built once in its ``__main__`` by ``<Settings>.parse(argv,
environ)``; shared parts such as :class:`RedisOptions` add their own flags to the parser, so a
new process composes them instead of re-declaring flags.

Precedence for every value: the flag, then ``CLIPPER_<FLAG>`` (flag name upper-cased), then the
default. A bad value, from a flag or from the environment, exits with status 2 and a message that
names where the value came from. Imports nothing of ours.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

__all__ = [
    "ADMIN_TOKEN_ENV",
    "DEFAULT_BATCH_RESPONSE_GRACE_S",
    "DEFAULT_BATCH_WAIT_S",
    "DEFAULT_HOST",
    "DEFAULT_INACTIVITY_TIMEOUT_S",
    "DEFAULT_KEEPALIVE_TIMEOUT_S",
    "DEFAULT_MANAGEMENT_PORT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_INPUTS_PER_REQUEST",
    "DEFAULT_MAX_QUEUE_LENGTH",
    "DEFAULT_REDIS_PORT",
    "DEFAULT_RPC_MAX_MESSAGE_BYTES",
    "DEFAULT_RPC_SPIN_US",
    "DEFAULT_TIMEOUT_CONTENT_S",
    "DEFAULT_TIMEOUT_REQUEST_S",
    "ENV_PREFIX",
    "QUERY_FRONTEND_ADDRESS_ENV",
    "REDIS_PASSWORD_ENV",
    "FlagReader",
    "LoggingOptions",
    "ManagementSettings",
    "QuerySettings",
    "RedisOptions",
    "SettingsError",
    "parse_address",
    "parse_bool",
    "parse_host",
    "parse_log_level",
    "parse_port",
]

ENV_PREFIX: Final = "CLIPPER_"
# The conventional variable (also read by redis-cli's users and the original's docs).
REDIS_PASSWORD_ENV: Final = "REDIS_PASSWORD"
DEFAULT_REDIS_PORT: Final = 6379
# Every listener binds the loopback unless the operator names an interface (0.0.0.0 for all).
DEFAULT_HOST: Final = "127.0.0.1"
ADMIN_TOKEN_ENV: Final = "CLIPPER_ADMIN_TOKEN"
# Where the management frontend's dashboard reads the query frontend's /metrics (host:port).
QUERY_FRONTEND_ADDRESS_ENV: Final = "CLIPPER_QUERY_FRONTEND_ADDRESS"
DEFAULT_MANAGEMENT_PORT: Final = 1338
DEFAULT_QUERY_PORT: Final = 1337
DEFAULT_RPC_SERVICE_PORT: Final = 7000
DEFAULT_PREDICTION_CACHE_SIZE_BYTES: Final = 33_554_432
# Prediction bodies carry base64 images; 32 MiB leaves room and still bounds memory per request.
DEFAULT_MAX_REQUEST_BYTES: Final = 32 * 1024 * 1024
# Inputs one predict request may carry (413 above): each input is a query with its own cache
# lookup and queue entry, so this bounds the work and memory one request can claim.
DEFAULT_MAX_INPUTS_PER_REQUEST: Final = 2048
# Queries queued per model before new ones are shed with the default output: four maximal
# requests' worth, far more than a healthy model holds, yet a bound on memory under overload.
DEFAULT_MAX_QUEUE_LENGTH: Final = 8192
# The original's HTTP timeouts (core spec 7): headers, then body and response, in seconds.
DEFAULT_TIMEOUT_REQUEST_S: Final = 5
DEFAULT_TIMEOUT_CONTENT_S: Final = 300
# An idle keep-alive connection is closed after this long (it holds a file descriptor).
DEFAULT_KEEPALIVE_TIMEOUT_S: Final = 15.0
# Connections served at once; more are answered 503 and closed (keep below `ulimit -n`).
DEFAULT_MAX_CONNECTIONS: Final = 10_000
# Delayed batching: how long a free replica waits for its batch to fill (0 = take what is queued).
DEFAULT_BATCH_WAIT_S: Final = 0.0
# A batch still unanswered this long after the last deadline in it means a wedged container
# (alive, heartbeating, but never answering): the batch fails and the replica is dropped, so
# the container must register again before it gets work. As generous as the silence allowed
# before a container is removed.
DEFAULT_BATCH_RESPONSE_GRACE_S: Final = 30.0
# A model container silent this long is removed (its in-flight batch fails at once).
DEFAULT_INACTIVITY_TIMEOUT_S: Final = 30.0
# Largest frame a model container may send (ZMQ_MAXMSGSIZE; a larger one disconnects it).
DEFAULT_RPC_MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024
# The frontend's bound on polling for a container's reply, off by default; the container
# runtime's default (clipper_core.rpc.spin.DEFAULT_SPIN_US) is the same, kept there because
# settings import nothing.
DEFAULT_RPC_SPIN_US: Final = 0

T = TypeVar("T")
N = TypeVar("N", int, float)


class SettingsError(ValueError):
    """A flag or environment value that cannot be used."""


# ---------------------------------------------------------------------------- value parsers


def parse_port(text: str) -> int:
    """A TCP port, 0-65535 (0 = let the OS pick, useful in tests)."""
    try:
        port = int(text.strip())
    except ValueError:
        raise SettingsError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise SettingsError(f"port {port} is outside 0-65535")
    return port


def parse_host(text: str) -> str:
    host = text.strip()
    if not host:
        raise SettingsError("host must not be empty")
    return host


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for an IPv6 literal) -> (host, port)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host:
        raise SettingsError(f"{text!r} is not host:port")
    return parse_host(host.removeprefix("[").removesuffix("]")), parse_port(port)


def parse_log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in logging.getLevelNamesMapping():
        raise SettingsError(f"{text!r} is not a log level (DEBUG, INFO, WARNING, ERROR)")
    return level


def _parse_str(text: str) -> str:
    return text


_NO_ADDRESSES: tuple[tuple[str, int], ...] = ()


def _parse_addresses(text: str) -> tuple[tuple[str, int], ...]:
    return tuple(parse_address(part) for part in text.split(",") if part.strip())


def _parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise SettingsError(f"{text!r} is not an integer") from None


def _non_negative(value: N, unit: str = "") -> N:
    if value < 0:
        raise SettingsError(f"{value} is negative; it must be 0 or more{unit}")
    return value


def _positive(value: N, unit: str = "") -> N:
    if value <= 0:
        raise SettingsError(f"{value} must be positive{unit}")
    return value


def _parse_float(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise SettingsError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise SettingsError(f"{text!r} is not a finite number")
    return value


def parse_bool(text: str) -> bool:
    """``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off`` (any case)."""
    word = text.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{text!r} is not a boolean (true/false, 1/0, yes/no, on/off)")


def parse_non_negative_int(text: str) -> int:
    return _non_negative(_parse_int(text))


def parse_positive_int(text: str) -> int:
    return _positive(_parse_int(text))


def parse_non_negative_seconds(text: str) -> float:
    return _non_negative(_parse_float(text), " seconds")


def parse_positive_seconds(text: str) -> float:
    return _positive(_parse_float(text), " (seconds)")


# ---------------------------------------------------------------------------- flag plumbing


class FlagReader:
    """Declares flags on an argparse parser and resolves them against the environment.

    argparse only sees the flags; env defaults are applied after parsing so that a bad env value
    is reported with the variable's name rather than as a flag error.
    """

    def __init__(self, prog: str, description: str, environ: Mapping[str, str]) -> None:
        self.parser = argparse.ArgumentParser(prog=prog, description=description)
        self.environ = environ
        self._parsers: dict[str, Callable[[str], object]] = {}
        self._defaults: dict[str, object] = {}
        self._extra_env: dict[str, tuple[str, ...]] = {}
        self._env_names: dict[str, str] = {}
        self._namespace: argparse.Namespace | None = None

    def add(
        self,
        flag: str,
        parse: Callable[[str], T],
        default: T,
        help_text: str,
        extra_env: tuple[str, ...] = (),
        env: str | None = None,
    ) -> None:
        """Declare ``--<flag>``; ``extra_env`` are fallbacks consulted after ``CLIPPER_<FLAG>``.

        ``env`` replaces ``CLIPPER_<FLAG>`` where that name would mean something else, e.g.
        ``CLIPPER_PORT`` is the model containers' RPC port, not a frontend's REST port.
        """
        if env is not None:
            self._env_names[flag] = env
        env_names = (self.env_name(flag), *extra_env)
        self.parser.add_argument(
            f"--{flag}",
            dest=flag,
            default=None,
            metavar=flag.upper(),
            help=f"{help_text} (env {' or '.join(env_names)}; default {default!r})",
        )
        self._parsers[flag] = parse
        self._defaults[flag] = default
        self._extra_env[flag] = extra_env

    def env_name(self, flag: str) -> str:
        return self._env_names.get(flag, ENV_PREFIX + flag.upper())

    def parse_args(self, argv: Sequence[str]) -> None:
        self._namespace = self.parser.parse_args(list(argv))

    def value(self, flag: str) -> object:
        """The resolved, validated value of one flag; exits via argparse on a bad value."""
        if self._namespace is None:
            raise RuntimeError("parse_args() first")
        parse = self._parsers[flag]
        raw = getattr(self._namespace, flag)
        if raw is not None:
            return self._convert(parse, raw, f"--{flag}")
        for env in (self.env_name(flag), *self._extra_env[flag]):
            env_raw = self.environ.get(env)
            if env_raw is not None and env_raw != "":
                return self._convert(parse, env_raw, f"environment variable {env}")
        return self._defaults[flag]

    def int_value(self, flag: str) -> int:
        value = self.value(flag)
        if not isinstance(value, int):
            raise TypeError(f"flag {flag} is not an int flag")
        return value

    def float_value(self, flag: str) -> float:
        value = self.value(flag)
        if not isinstance(value, float):
            raise TypeError(f"flag {flag} is not a float flag")
        return value

    def bool_value(self, flag: str) -> bool:
        value = self.value(flag)
        if not isinstance(value, bool):
            raise TypeError(f"flag {flag} is not a boolean flag")
        return value

    def optional_int_value(self, flag: str) -> int | None:
        value = self.value(flag)
        if value is not None and not isinstance(value, int):
            raise TypeError(f"flag {flag} is not an int flag")
        return value

    def str_value(self, flag: str) -> str:
        return str(self.value(flag))

    def optional_str_value(self, flag: str) -> str | None:
        value = self.value(flag)
        return None if value is None or value == "" else str(value)

    def _convert(self, parse: Callable[[str], object], raw: str, source: str) -> object:
        try:
            return parse(raw)
        except SettingsError as exc:
            self.parser.error(f"invalid value for {source}: {exc}")  # exits with status 2


# ---------------------------------------------------------------------------- shared parts


@dataclass(slots=True, frozen=True)
class RedisOptions:
    """Where Redis is: ``--redis_ip``, ``--redis_port``, ``--redis_password``."""

    ip: str = "localhost"
    port: int = DEFAULT_REDIS_PORT
    password: str | None = None

    @staticmethod
    def declare(flags: FlagReader) -> None:
        flags.add("redis_ip", parse_host, "localhost", "Redis host")
        flags.add("redis_port", parse_port, DEFAULT_REDIS_PORT, "Redis port")
        flags.add(
            "redis_password",
            _parse_str,
            None,
            "Redis password (AUTH); prefer the environment to keep it out of `ps`",
            extra_env=(REDIS_PASSWORD_ENV,),
        )

    @classmethod
    def resolve(cls, flags: FlagReader) -> RedisOptions:
        return cls(
            ip=flags.str_value("redis_ip"),
            port=flags.int_value("redis_port"),
            password=flags.optional_str_value("redis_password"),
        )


@dataclass(slots=True, frozen=True)
class LoggingOptions:
    """``--log_level`` (DEBUG, INFO, WARNING, ERROR)."""

    level: str = "INFO"

    @staticmethod
    def declare(flags: FlagReader) -> None:
        flags.add("log_level", parse_log_level, "INFO", "log level")

    @classmethod
    def resolve(cls, flags: FlagReader) -> LoggingOptions:
        return cls(level=flags.str_value("log_level"))


def _declare_listener(
    flags: FlagReader, frontend: str, default_port: int, host_help: str, port_help: str
) -> None:
    """``--host`` / ``--port`` of a frontend's REST API, from ``CLIPPER_<FRONTEND>_HOST`` / ``_PORT``.

    Not ``CLIPPER_PORT``: that is the model containers' RPC port.
    """
    flags.add("host", parse_host, DEFAULT_HOST, host_help, env=f"{ENV_PREFIX}{frontend}_HOST")
    flags.add("port", parse_port, default_port, port_help, env=f"{ENV_PREFIX}{frontend}_PORT")


# ---------------------------------------------------------------------------- processes


@dataclass(slots=True, frozen=True)
class ManagementSettings:
    """Settings of ``python -m clipper_core.management_frontend``."""

    redis: RedisOptions = RedisOptions()
    host: str = DEFAULT_HOST
    port: int = DEFAULT_MANAGEMENT_PORT
    logging: LoggingOptions = LoggingOptions()
    # When set, every /admin/* request but /admin/ping needs ``Authorization: Bearer <token>``.
    admin_token: str | None = None
    # The query frontends whose /metrics the dashboard samples (each on an address only it
    # serves); none: the dashboard shows the cluster's state from Redis only.
    query_frontends: tuple[tuple[str, int], ...] = ()

    @classmethod
    def parse(cls, argv: Sequence[str], environ: Mapping[str, str]) -> ManagementSettings:
        """Flags (``--name value`` or ``--name=value``) over ``CLIPPER_<NAME>`` over defaults.

        Raises:
            SystemExit: status 2 with a message on an unknown flag or a bad value.
        """
        flags = FlagReader(
            "clipper-management-frontend", "Clipper management REST API (/admin/*)", environ
        )
        RedisOptions.declare(flags)
        _declare_listener(
            flags, "MANAGEMENT", DEFAULT_MANAGEMENT_PORT, "address to listen on", "port to listen on"
        )
        LoggingOptions.declare(flags)
        flags.add(
            "admin_token",
            _parse_str,
            None,
            "bearer token every /admin/* request but /admin/ping must carry; prefer the "
            "environment to keep it out of `ps`",
            env=ADMIN_TOKEN_ENV,
        )
        flags.add(
            "query_frontend_address",
            _parse_addresses,
            _NO_ADDRESSES,
            "host:port of the query frontend whose /metrics the dashboard (/dashboard) samples; "
            "several, comma-separated, are summed (each must be an address only that frontend serves)",
            env=QUERY_FRONTEND_ADDRESS_ENV,
        )
        flags.parse_args(argv)
        query_frontends = flags.value("query_frontend_address")
        return cls(
            redis=RedisOptions.resolve(flags),
            host=flags.str_value("host"),
            port=flags.int_value("port"),
            logging=LoggingOptions.resolve(flags),
            admin_token=flags.optional_str_value("admin_token"),
            query_frontends=query_frontends if isinstance(query_frontends, tuple) else (),
        )


@dataclass(slots=True, frozen=True)
class QuerySettings:
    """Settings of ``python -m clipper_core.query_frontend`` (the original's flags, spec 7).

    ``thread_pool_size`` is accepted for compatibility with the original's command lines and
    is unused: one asyncio loop serves every connection. ``timeout_request`` (seconds to send
    the request line and headers) and ``timeout_content`` (seconds to send the body and read
    the response) mean what they meant in the original, 0 = no limit.

    Several query frontends on one machine share the REST port with ``reuse_port`` (Linux
    ``SO_REUSEPORT``: the kernel spreads new connections over them); each then needs its own
    ``rpc_service_port`` and an ``instance_port``, a second REST listener that only this
    process serves, so that its ``/healthz`` and ``/metrics`` can be read one by one.
    """

    redis: RedisOptions = RedisOptions()
    host: str = DEFAULT_HOST
    port: int = DEFAULT_QUERY_PORT
    reuse_port: bool = False
    instance_port: int | None = None
    rpc_host: str = DEFAULT_HOST
    rpc_service_port: int = DEFAULT_RPC_SERVICE_PORT
    prediction_cache_size: int = DEFAULT_PREDICTION_CACHE_SIZE_BYTES
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_inputs_per_request: int = DEFAULT_MAX_INPUTS_PER_REQUEST
    max_queue_length: int = DEFAULT_MAX_QUEUE_LENGTH
    batch_wait_s: float = DEFAULT_BATCH_WAIT_S
    batch_response_grace_s: float = DEFAULT_BATCH_RESPONSE_GRACE_S
    inactivity_timeout_s: float = DEFAULT_INACTIVITY_TIMEOUT_S
    rpc_max_message_bytes: int = DEFAULT_RPC_MAX_MESSAGE_BYTES
    rpc_spin_us: int = DEFAULT_RPC_SPIN_US
    # The cluster's RPC secret (CurveZMQ); None = plain RPC v3 as the original. Not in repr.
    rpc_secret: str | None = field(default=None, repr=False)
    thread_pool_size: int = 1
    timeout_request: int = DEFAULT_TIMEOUT_REQUEST_S
    timeout_content: int = DEFAULT_TIMEOUT_CONTENT_S
    keepalive_timeout_s: float = DEFAULT_KEEPALIVE_TIMEOUT_S
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    logging: LoggingOptions = LoggingOptions()

    @classmethod
    def parse(cls, argv: Sequence[str], environ: Mapping[str, str]) -> QuerySettings:
        """Flags (``--name value`` or ``--name=value``) over ``CLIPPER_<NAME>`` over defaults.

        Raises:
            SystemExit: status 2 with a message on an unknown flag or a bad value (for example
                a negative ``--prediction_cache_size``).
        """
        flags = FlagReader("clipper-query-frontend", "Clipper query REST API and model RPC service", environ)
        RedisOptions.declare(flags)
        _declare_listener(flags, "QUERY", DEFAULT_QUERY_PORT, "address the REST API listens on", "REST port")
        flags.add(
            "reuse_port",
            parse_bool,
            False,
            "share the REST port with other query frontends (SO_REUSEPORT; the kernel spreads"
            " connections over them)",
        )
        flags.add(
            "instance_port",
            parse_port,
            None,
            "a second REST listener served by this process alone (for its own /healthz and"
            " /metrics when the REST port is shared)",
        )
        flags.add("rpc_host", parse_host, DEFAULT_HOST, "address the ZeroMQ RPC service binds")
        flags.add("rpc_service_port", parse_port, DEFAULT_RPC_SERVICE_PORT, "ZeroMQ RPC service port")
        flags.add(
            "prediction_cache_size",
            parse_non_negative_int,
            DEFAULT_PREDICTION_CACHE_SIZE_BYTES,
            "prediction cache capacity in bytes of outputs",
        )
        flags.add(
            "max_request_bytes",
            parse_positive_int,
            DEFAULT_MAX_REQUEST_BYTES,
            "largest request body (413 above)",
        )
        flags.add(
            "max_inputs_per_request",
            parse_positive_int,
            DEFAULT_MAX_INPUTS_PER_REQUEST,
            "most inputs one predict request may carry (413 above)",
        )
        flags.add(
            "max_queue_length",
            parse_positive_int,
            DEFAULT_MAX_QUEUE_LENGTH,
            "queries queued per model; more are answered at once with the default output",
        )
        flags.add(
            "batch_wait_s",
            parse_non_negative_seconds,
            DEFAULT_BATCH_WAIT_S,
            "seconds a free replica waits for its batch to fill (0 = off)",
        )
        flags.add(
            "batch_response_grace_s",
            parse_positive_seconds,
            DEFAULT_BATCH_RESPONSE_GRACE_S,
            "seconds past a batch's last deadline before an unanswered batch fails"
            " and its replica is dropped",
        )
        flags.add(
            "inactivity_timeout_s",
            parse_positive_seconds,
            DEFAULT_INACTIVITY_TIMEOUT_S,
            "seconds of silence after which a model container is removed",
        )
        flags.add(
            "rpc_max_message_bytes",
            parse_positive_int,
            DEFAULT_RPC_MAX_MESSAGE_BYTES,
            "largest RPC frame a model container may send; a larger one disconnects it",
        )
        flags.add(
            "rpc_spin_us",
            parse_non_negative_int,
            DEFAULT_RPC_SPIN_US,
            "longest microseconds the loop polls for a model container's reply before sleeping"
            " (adapted per container below it; 0 = never poll, the default)",
        )
        flags.add(
            "rpc_secret",
            _parse_str,
            None,
            "shared secret: model containers must speak CurveZMQ with keys derived from it"
            " (prefer the environment to keep it out of `ps`)",
        )
        flags.add("thread_pool_size", parse_positive_int, 1, "accepted for compatibility; unused")
        flags.add(
            "timeout_request",
            parse_non_negative_int,
            DEFAULT_TIMEOUT_REQUEST_S,
            "seconds a client has to send the request line and headers (0 = no limit)",
        )
        flags.add(
            "timeout_content",
            parse_non_negative_int,
            DEFAULT_TIMEOUT_CONTENT_S,
            "seconds a client has to send the body and read the response (0 = no limit)",
        )
        flags.add(
            "keepalive_timeout_s",
            parse_non_negative_seconds,
            DEFAULT_KEEPALIVE_TIMEOUT_S,
            "seconds an idle keep-alive connection is kept open (0 = no limit)",
        )
        flags.add(
            "max_connections",
            parse_positive_int,
            DEFAULT_MAX_CONNECTIONS,
            "HTTP connections served at once; more are answered 503 and closed",
        )
        LoggingOptions.declare(flags)
        flags.parse_args(argv)
        return cls(
            redis=RedisOptions.resolve(flags),
            host=flags.str_value("host"),
            port=flags.int_value("port"),
            reuse_port=flags.bool_value("reuse_port"),
            instance_port=flags.optional_int_value("instance_port"),
            rpc_host=flags.str_value("rpc_host"),
            rpc_service_port=flags.int_value("rpc_service_port"),
            prediction_cache_size=flags.int_value("prediction_cache_size"),
            max_request_bytes=flags.int_value("max_request_bytes"),
            max_inputs_per_request=flags.int_value("max_inputs_per_request"),
            max_queue_length=flags.int_value("max_queue_length"),
            batch_wait_s=flags.float_value("batch_wait_s"),
            batch_response_grace_s=flags.float_value("batch_response_grace_s"),
            inactivity_timeout_s=flags.float_value("inactivity_timeout_s"),
            rpc_max_message_bytes=flags.int_value("rpc_max_message_bytes"),
            rpc_spin_us=flags.int_value("rpc_spin_us"),
            rpc_secret=flags.optional_str_value("rpc_secret"),
            thread_pool_size=flags.int_value("thread_pool_size"),
            timeout_request=flags.int_value("timeout_request"),
            timeout_content=flags.int_value("timeout_content"),
            keepalive_timeout_s=flags.float_value("keepalive_timeout_s"),
            max_connections=flags.int_value("max_connections"),
            logging=LoggingOptions.resolve(flags),
        )
