"""Schema enforcement for the in-process model at full decode speed.

llama-cpp-python's own JSON grammar costs about 40 % of decode speed.  llguidance computes the
set of allowed tokens for a JSON schema (or a Lark grammar) in a fraction of a millisecond;
we apply it as a logits mask.  The matcher follows the tokens the loop actually samples.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np

try:  # optional: without it the embedded backend falls back to llama.cpp's grammar
    import llguidance
    import llguidance.llamacpp
except ImportError:  # pragma: no cover - exercised only where llguidance is not installed
    llguidance = None  # type: ignore[assignment]

# Compact separators like json.dumps(..., ensure_ascii=False): no room for whitespace runs,
# and the model writes exactly what the prompt's example shows.
_JSON_OPTIONS: dict[str, Any] = {
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
}


def available() -> bool:
    return llguidance is not None


class TokenMasker:
    """Builds llguidance matchers for one model's vocabulary (built once: it takes ~1 s)."""

    def __init__(self, vocab: Any, n_vocab: int, eos_tokens: list[int]) -> None:
        assert llguidance is not None
        self.n_vocab = n_vocab
        # llguidance's helper calls a llama.cpp function that warns once per token of the
        # 150k-token vocabulary: silence that, it says nothing to our users.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.tokenizer = llguidance.llamacpp.lltokenizer_from_vocab(vocab, eos_token=eos_tokens)
        self._grammars: dict[str, str] = {}

    def grammar_for_schema(self, schema: dict[str, Any]) -> str:
        key = json.dumps(schema, sort_keys=True)
        grammar = self._grammars.get(key)
        if grammar is None:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(
                schema,
                defaults=_JSON_OPTIONS,  # type: ignore[arg-type]
            )
            self._grammars[key] = grammar
        return grammar

    def grammar_for_regex(self, regex: str) -> str:
        grammar = self._grammars.get(regex)
        if grammar is None:
            grammar = llguidance.LLMatcher.grammar_from_regex(regex)
            self._grammars[regex] = grammar
        return grammar

    def matcher(self, grammar: str) -> MaskedSampling:
        matcher = llguidance.LLMatcher(self.tokenizer, grammar, log_level=0)
        if matcher.is_error():
            raise ValueError(f"invalid grammar: {matcher.get_error()}")
        return MaskedSampling(matcher, self.n_vocab)


class MaskedSampling:
    """One generation's constraint: call ``mask`` before sampling, ``advance`` after."""

    __slots__ = ("_bits", "_matcher", "_n_vocab", "_words")

    def __init__(self, matcher: Any, n_vocab: int) -> None:
        self._matcher = matcher
        self._n_vocab = n_vocab
        self._words = np.zeros((n_vocab + 31) // 32, dtype=np.int32)
        self._bits = self._words.view(np.uint8)

    def logits_processor(self, _input_ids: Any, scores: np.ndarray) -> np.ndarray:
        """llama-cpp-python logits processor: forbid every token the grammar does not allow."""
        self._matcher.unsafe_compute_mask_ptr(self._words.ctypes.data, self._words.nbytes)
        allowed = np.unpackbits(self._bits, bitorder="little", count=scores.shape[0]).view(bool)
        np.putmask(scores, ~allowed, -np.inf)
        return scores

    def apply_to(self, logits: np.ndarray) -> None:
        """Set the logit of every token the grammar forbids to -inf, in place."""
        self._matcher.unsafe_compute_mask_ptr(self._words.ctypes.data, self._words.nbytes)
        n = min(logits.shape[0], self._n_vocab)
        allowed = np.unpackbits(self._bits, bitorder="little", count=n).view(bool)
        logits[:n][~allowed] = -np.inf
        if logits.shape[0] > n:
            logits[n:] = -np.inf

    def advance(self, token: int) -> bool:
        """Feed the sampled token; False if the grammar rejected it (it never should)."""
        return bool(self._matcher.consume_token(token))

    @property
    def finished(self) -> bool:
        """The grammar is complete: nothing but end-of-text may follow."""
        return bool(self._matcher.is_stopped())

    @property
    def error(self) -> str | None:
        return self._matcher.get_error() if self._matcher.is_error() else None
