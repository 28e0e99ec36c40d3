"""Can the embedded model spell?  Why letter counting stays low whatever the chain does.

Counting the letters of a word by writing it out (the technique the prompts teach) only works
when the model can write the word out.  This probe asks the embedded default model, at
temperature 0, to spell each long word of the `letters` generator in four shapes and checks
the letters it writes against the word:

* one letter per numbered line (what the chain prompts ask for);
* letters joined by hyphens (``c-a-t``);
* syllable by syllable (``straw: s-t-r-a-w``): short pieces a tokenizer may know better;
* the output of Python's ``list("word")`` (a coder model has seen many).

    python benchmarks/probe_spelling.py
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import write_section
from thinkchain.chain.backend import GenerationRequest, TextChunk
from thinkchain.eval.letters import LONG_WORDS
from thinkchain.models.backends.llamacpp import LlamaCppBackend
from thinkchain.models.embedded import DEFAULT_MODEL, path_of

SHAPES = {
    "one letter per numbered line": (
        'Write the word "{word}" out one letter per line, numbered with its position. '
        "Nothing else.",
        lambda text: "".join(
            re.findall(r"^\s*\d+[.):]?\s*[\"']?([A-Za-z])[\"']?\s*$", text, re.MULTILINE)
        ),
    ),
    "hyphens (c-a-t)": (
        'Spell the word "{word}" with a hyphen between the letters (like c-a-t). Nothing else.',
        lambda text: "".join(
            re.sub(r"[\s-]", "", m.group(1))
            for m in [re.search(r"([A-Za-z](?:\s*-\s*[A-Za-z])+)", text)]
            if m
        ),
    ),
    "syllable by syllable": (
        'Break the word "{word}" into its syllables. Write one line per syllable: the '
        'syllable, a colon, then its letters joined by hyphens (for "paper": "pa: p-a", then '
        '"per: p-e-r"). Nothing else.',
        lambda text: "".join(
            re.sub(r"[\s-]", "", letters)
            for letters in re.findall(
                r"^[^:\n]*:\s*([A-Za-z](?:\s*-\s*[A-Za-z])*)\s*$", text, re.MULTILINE
            )
        ),
    ),
    'Python list("word")': (
        'What does Python print for list("{word}")? Reply with the output only.',
        lambda text: "".join(re.findall(r"'([A-Za-z])'", text)),
    ),
}


async def spelled_right(backend: LlamaCppBackend, template: str, read, word: str) -> bool:
    request = GenerationRequest(
        [{"role": "user", "content": template.format(word=word)}], max_tokens=120, temperature=0
    )
    parts = [c.text async for c in backend.generate(request) if isinstance(c, TextChunk)]
    return read("".join(parts)).lower() == word.lower()


async def probe(words: list[str]) -> dict[str, int]:
    backend = LlamaCppBackend(path_of(DEFAULT_MODEL), n_parallel=4)
    try:
        scores = {}
        for shape, (template, read) in SHAPES.items():
            results = await asyncio.gather(
                *(spelled_right(backend, template, read, word) for word in words)
            )
            scores[shape] = sum(results)
            print(f"{shape}: {scores[shape]}/{len(words)}", flush=True)
        return scores
    finally:
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=len(LONG_WORDS))
    args = parser.parse_args()
    words = list(LONG_WORDS)[: args.n]
    scores = asyncio.run(probe(words))
    rows = "\n".join(f"| {shape} | {n}/{len(words)} |" for shape, n in scores.items())
    body = f"""
The embedded default model ({DEFAULT_MODEL.name}) asked at temperature 0 to spell the
{len(words)} long words of the `letters` generator (`strawberry`, `mississippi`, ...), in
{len(SHAPES)} shapes; a word counts when every letter it writes is right and in order.

| shape | words spelled right |
|---|---|
{rows}

Counting letters by writing the word out needs a model that can write the word out; this
one mostly cannot, so no prompt or chain shape can lift `letters` far on it.
"""
    write_section("spelling", "Spelling probe: can the embedded model write a word out?", body)
    print(body)


if __name__ == "__main__":
    main()
