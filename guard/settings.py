"""Process settings for `guard serve` and `create_app`: where to listen, where the upstream is, how the
upstream client is bounded. Policy content lives in the policy file; this is only the process around it.

Timeouts are explicit (STYLE §4): an unbounded upstream call is a hung worker. aiohttp has no separate
write timeout, so for a body larger than the socket buffer (the only kind whose send can stall),
`upstream_write_timeout_s` + `upstream_read_timeout_s` bound sending it and waiting for the response
headers (see `guard.proxy.upstream`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

Seconds = Annotated[float, Field(gt=0, le=3600)]
Port = Annotated[int, Field(ge=0, le=65535)]


def default_executor_threads() -> int:
    # Inference is CPU-bound and torch/spaCy release the GIL; more threads than cores only contend.
    return max(1, min(4, os.cpu_count() or 1))


class GuardSettings(BaseModel):
    """Validated once at startup; frozen so no part of the app can change what another part reads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    upstream_url: AnyHttpUrl
    host: str = "127.0.0.1"
    port: Port = 8080
    admin_host: str = "127.0.0.1"
    admin_port: Port = 8081
    policy_path: Path | None = None  # None: the shipped default policy

    upstream_connect_timeout_s: Seconds = 5.0
    upstream_read_timeout_s: Seconds = 120.0
    upstream_write_timeout_s: Seconds = 30.0
    upstream_pool_timeout_s: Seconds = 10.0
    upstream_max_connections: Annotated[int, Field(gt=0, le=100_000)] = 256

    drain_timeout_s: Seconds = 30.0
    # Client connection bounds on both ports (guard.proxy.connections, issue 15).
    max_head_bytes: Annotated[int, Field(ge=1024, le=1 << 24)] = 64 * 1024
    head_timeout_s: Seconds = 10.0
    body_timeout_s: Seconds = 60.0
    keepalive_timeout_s: Seconds = 5.0
    max_client_connections: Annotated[int, Field(gt=0, le=1_000_000)] = 1024
    executor_threads: Annotated[int, Field(gt=0, le=256)] = Field(default_factory=default_executor_threads)
    torch_threads: Annotated[int, Field(gt=0, le=256)] = 1
    cache_size: Annotated[int, Field(ge=0, le=10_000_000)] = 10_000

    # Carried for the audit and review rooms; the proxy only passes them on.
    audit_path: str | None = None  # a JSONL file or a postgresql:// DSN (guard.review.wiring)
    audit_anchor_path: Path | None = None  # the chain's last seq and hash, for the operator to ship elsewhere
    audit_anchor_interval_s: Seconds = 1.0
    review_store_url: str | None = None
    tokens_file: Path | None = None
    # Review queue limits (guard.review.limits): new held items per client address, pending cap, retention.
    review_rate_per_minute: Annotated[float, Field(gt=0, le=1_000_000)] = 30.0
    review_burst: Annotated[int, Field(gt=0, le=1_000_000)] = 10
    review_max_pending: Annotated[int, Field(gt=0, le=10_000_000)] = 1000
    review_retention_s: Annotated[float, Field(gt=0, le=10 * 365 * 86400)] = 7 * 86400.0

    @field_validator("upstream_url")
    @classmethod
    def _no_query(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        if value.query or value.fragment:
            raise ValueError(
                "upstream_url takes a scheme, host, port and optional base path only, "
                "e.g. 'http://127.0.0.1:8000' or 'https://api.example.com/openai'"
            )
        return value
