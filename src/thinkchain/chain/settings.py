"""Settings of one chain, validated once at the edge so the loop can trust them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from thinkchain.sandbox.limits import SandboxLimits

Lang = Literal["auto", "zh", "en"]
# How the model is asked to think:
#   iterative    one JSON step (title, content, next_action) per call;
#   iterative-text  one step per call, free text inside a minimal "Title:/Next:" envelope;
#   single-pass  the whole titled chain in one generation, split into steps as it streams;
#   direct       one call, the answer only (the baseline without reasoning);
#   cot          one call, "think step by step, then answer" (the honest baseline).
Mode = Literal["iterative", "iterative-text", "single-pass", "direct", "cot"]
MODES: tuple[str, ...] = ("iterative", "iterative-text", "single-pass", "direct", "cot")
# single-pass wins on accuracy per second on the embedded model (docs/results.md).
DEFAULT_MODE: Mode = "single-pass"
ENV_MODE = "THINKCHAIN_MODE"  # the mode `ask` and the page start with
# Tools a chain's steps may use; "python": a fenced Python block in a step runs in the sandbox.
Tool = Literal["python"]
TOOLS: tuple[str, ...] = ("python",)


def auto_tools(*, embedded: bool) -> tuple[Tool, ...]:
    """The tools a chain gets when the user did not choose: code steps on the embedded model
    (they win on accuracy per second there: docs/results.md, "Code steps"), wherever the sandbox can
    isolate code; none on a server, whose model thinkchain knows nothing about."""
    if not embedded:
        return ()
    from thinkchain.sandbox import isolation_report  # probes the machine once, on first use

    return ("python",) if isolation_report().safe else ()


def parse_tools(text: str) -> tuple[str, ...]:
    """``"python"`` or ``"python,..."`` (or empty, or "none") -> the tools, checked."""
    names = [n.strip().lower() for n in text.replace(" ", ",").split(",") if n.strip()]
    names = [n for n in names if n != "none"]
    unknown = [n for n in names if n not in TOOLS]
    if unknown:
        raise ValueError(f"unknown tool {unknown[0]!r}: the tools are {', '.join(TOOLS)}")
    return tuple(dict.fromkeys(names))


# max_steps is exact: a chain never gets one step more than asked for.
DEFAULT_MAX_STEPS = 25
HARD_MAX_STEPS = 200


class ChainSettings(BaseModel):
    """How a chain runs: temperature 0.2 and 1000 tokens a step unless told otherwise."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Mode = DEFAULT_MODE
    temperature: float = Field(0.2, ge=0.0, le=2.0)
    max_tokens_per_step: int = Field(1000, ge=16, le=32768)
    final_max_tokens: int = Field(1000, ge=16, le=32768)
    max_steps: int = Field(DEFAULT_MAX_STEPS, ge=1, le=HARD_MAX_STEPS)
    min_steps: int = Field(3, ge=0, le=HARD_MAX_STEPS)
    lang: Lang = "auto"
    # Attempts per step when the model's output is not a valid step.
    max_attempts: int = Field(3, ge=1, le=10)
    # Budgets: generated (completion) tokens of every call together, and wall time in seconds.
    max_total_tokens: int | None = Field(None, ge=1)
    max_seconds: float | None = Field(None, gt=0)
    # Questions longer than this are refused before anything is generated.
    max_question_chars: int = Field(32_000, ge=1)
    seed: int | None = None
    # After the answer, check it by solving again another way; a different result revises it.
    verify: bool = False
    # Code steps: the model may write a Python block in a step; it runs in the sandbox and the
    # model continues with its output.  max_code_runs bounds the runs of one chain.
    tools: tuple[Tool, ...] = ()
    max_code_runs: int = Field(6, ge=1, le=50)
    code_limits: SandboxLimits = Field(default_factory=SandboxLimits)
    # Transport failures (refused, timed out, cut, 429, 5xx) retried per call, with exponential
    # backoff from retry_base_delay, capped at retry_max_delay; a server's Retry-After wins.
    max_retries: int = Field(4, ge=0, le=20)
    retry_base_delay: float = Field(0.5, ge=0.0, le=60.0)
    retry_max_delay: float = Field(20.0, ge=0.0, le=600.0)

    def derive(self, **changes: object) -> ChainSettings:
        """These settings with ``changes``, checked by the same rules: every derived setting
        (a sample's seed, an eval mode's tools, a request's options) is made here."""
        if not changes:
            return self
        return ChainSettings.model_validate({**self.model_dump(), **changes})

    @model_validator(mode="after")
    def _min_not_above_max(self) -> ChainSettings:
        if self.min_steps > self.max_steps:
            raise ValueError(
                f"min_steps ({self.min_steps}) cannot be larger than max_steps ({self.max_steps})"
            )
        return self


# -- strategies: how many chains a run has, and how they are decided ---------------------------

# chain: one chain; sc: K samples and a vote; both: a program and prose side by side, more of
# both only while they disagree (strategies.py).
Strategy = Literal["chain", "sc", "both"]
STRATEGIES: tuple[str, ...] = ("chain", "sc", "both")
EarlyStop = Literal["off", "decisive", "agree"]
# Samples must differ to vote: self-consistency samples at this temperature unless told.
SAMPLE_TEMPERATURE = 0.7


class StrategySettings(BaseModel):
    """How a run is made of chains: one (``chain``), or K samples and a vote (``sc``).
    Validated once at the edge, like ChainSettings; every face reads its defaults here."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: Strategy = "chain"
    # sc: the samples; both: the most chains in all (the pair, then one at a time).
    k: int = Field(5, ge=1, le=64)
    # The samples' temperature; None keeps the chain's own.
    temperature: float | None = Field(SAMPLE_TEMPERATURE, ge=0.0, le=2.0)
    early_stop: EarlyStop = "decisive"
    agree_n: int = Field(3, le=64)  # early_stop "agree": this many first answers agree
    # sc: samples drawn beyond K while the top of the vote is tied (never finishing order).
    tie_breaks: int = Field(2, ge=0, le=16)

    @field_validator("agree_n")
    @classmethod
    def _agreement_of_two(cls, value: int) -> int:
        if value < 2:  # one answer agrees with nothing
            raise ValueError("agree_n must be at least 2")
        return value
