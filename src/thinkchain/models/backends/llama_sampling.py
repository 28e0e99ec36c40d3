"""The llama.cpp sampler chain of one request (schema mask, grammar, then greedy or random),
and the bytes each sampled token stands for."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import numpy as np

from thinkchain.models.backends.engine_request import EngineRequest


def make_sampler(llama: Any, req: EngineRequest) -> Any:
    """A sampler for ``req`` on ``llama`` (a llama_cpp.Llama); the caller closes it."""
    from llama_cpp._internals import LlamaSampler

    sampler = LlamaSampler()
    if req.masked is not None:
        sampler.add_custom(_mask_applier(req.masked))
    if req.grammar is not None:
        sampler.add_grammar(llama._model, req.grammar)
    if req.temperature <= 0:
        sampler.add_greedy()
    else:
        sampler.add_top_k(40)
        sampler.add_top_p(0.95, 1)
        sampler.add_min_p(0.05, 1)
        sampler.add_temp(req.temperature)
        sampler.add_dist(req.seed & 0xFFFFFFFF)
    return sampler


def _mask_applier(masked: Any) -> Callable[[Any], None]:
    """A llama.cpp custom sampler stage that forbids every token the grammar does not allow.

    It runs first in the chain, when the candidate array still holds every token in id order.
    """

    def apply(cur_p: Any) -> None:
        size = cur_p.contents.size
        data = ctypes.cast(cur_p.contents.data, ctypes.POINTER(ctypes.c_float))
        # llama_token_data is {int32 id; float logit; float p}: logits are every third float.
        logits = np.ctypeslib.as_array(data, shape=(size * 3,))[1::3]
        masked.apply_to(logits)

    return apply


class TokenPieces:
    """The bytes of each token, cached: the same few thousand tokens come up again."""

    def __init__(self, vocab: Any) -> None:
        self._vocab = vocab
        self._pieces: dict[int, bytes] = {}

    def __call__(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            import llama_cpp

            size = 64
            while True:
                buf = ctypes.create_string_buffer(size)
                n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, size, 0, False)
                if n >= 0:
                    piece = buf.raw[:n]
                    break
                size = -n
            self._pieces[token] = piece
        return piece
