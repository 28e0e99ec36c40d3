"""The limits one sandboxed run lives under, validated once so the runner can trust them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SandboxLimits(BaseModel):
    """Limits for one run of model-written code; every default is the safe choice.

    ``require_isolation`` (default True) refuses to run code on a machine where the sandbox
    cannot keep it off the network, out of the home folder, or under the process limit:
    ``run`` then returns status ``sandbox_error`` instead of running it weakly isolated.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    wall_seconds: float = Field(10.0, gt=0, le=3600, description="whole run, start to result")
    cpu_seconds: int = Field(5, ge=1, le=3600, description="CPU time of the code")
    # The interpreter itself needs about 20 MB of address space to start.
    memory_mb: int = Field(256, ge=64, le=65536, description="address space of the code")
    processes: int = Field(16, ge=1, le=4096, description="processes and threads of the code")
    output_chars: int = Field(4000, ge=100, le=10_000_000, description="output kept for the model")
    output_bytes: int = Field(
        1_000_000, ge=1000, le=1_000_000_000, description="output read before the code is stopped"
    )
    file_mb: int = Field(16, ge=1, le=65536, description="largest file the code may write")
    disk_mb: int = Field(64, ge=1, le=65536, description="all files the code may write together")
    require_isolation: bool = Field(True, description="refuse to run without full isolation")
