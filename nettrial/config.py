"""The one settings object. The only module that reads the environment (prefix ``NETTRIAL_``)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings for every part of nettrial; override with ``NETTRIAL_<NAME>`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="NETTRIAL_", frozen=True)

    # AJCC edition used when none is given; the study stages with Version 9 (staging.md decision 2).
    default_edition: Literal["8", "9"] = "9"
    # Rows per chunk when a batch file is staged; bounds memory on registry-size files.
    batch_chunk_rows: int = 250_000
    # Rows per block when flat files are prescreened: bounds memory and paces the progress bar.
    prescreen_block_rows: int = 50_000

    # --- study database and service ---
    # SQLite file in the working directory by default; PostgreSQL in production
    # (postgresql+psycopg://user@host:5432/db).
    database_url: str = "sqlite:///nettrial.db"
    # Protocol the service runs (built-in name or file path).
    protocol: str = "nct07279532"
    # Bearer tokens and web sessions expire after this many minutes without renewal.
    token_minutes: int = 8 * 60
    # Failed logins before each further attempt is slowed down (doubling delay, capped).
    login_failures_allowed: int = 5
    # argon2id cost (argon2-cffi defaults, RFC 9106's low-memory choice); tests lower the memory.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    login_delay_cap_seconds: int = 900
    # Service processes (``nettrial serve``): one per core. Within each, the threads that run
    # database work: few, because Python threads contend for one interpreter lock. With 40 (the
    # thread pool's default) a read cost 2.4 times the CPU it costs with 1 (benchmarks/api_load.py).
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    request_threads: int = Field(default=4, ge=1)
    # A pooled PostgreSQL connection idle longer than this is pinged before use, so that one dropped
    # by a server restart or a firewall is replaced instead of failing a request. One in steady use
    # is not: a ping per checkout was two round trips of every read (benchmarks/api_load.py).
    pool_ping_idle_seconds: float = Field(default=5.0, ge=0)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
