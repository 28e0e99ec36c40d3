"""The strawberry family: "how many times does the letter r occur in …?", generated.

Small models miss these because they see tokens, not letters.  Items are generated, not
stored: each one depends only on (seed, level, index), so the same seed always gives the same
questions and ids, and asking for more items later only appends new ones (resume stays valid).
Answers are exact integers, counted here, so the gold answers cannot be wrong.

Levels, from easy to hard for a model:

* ``short``    a short common word, a letter that occurs in it;
* ``long``     a long word (10+ letters), a letter that occurs in it;
* ``repeated`` a word where the letter occurs three times or more ("strawberry", "r");
* ``absent``   a letter that does not occur at all (the answer is 0);
* ``phrase``   a phrase of two to four words, counted across the words;
* ``case``     mixed-case text, the letter asked in the other case, both cases counted.

Then the phrasings people use, where a letter is a letter whatever its case (``PHRASINGS``;
asked together as ``letters:phrasings``, never mixed into the levels above, whose questions
and ids stay as they were):

* ``capital``  the letter named in capitals ("the letter S", "How many R's"), the word as
  written, maybe capitalised;
* ``plural``   "how many r's / rs / r" without the word "letter";
* ``unquoted`` the word and the letter without quotes or "the word", short and lower-case;
* ``mixed``    a word written in mixed case ("BaNaNa", "STRAWBERRY"), no note on case;
* ``zh``       the question in Chinese (单词…里有几个…, …中有多少个字母…).
"""

from __future__ import annotations

import random
import string

from thinkchain.eval.items import Item

LEVELS: tuple[str, ...] = ("short", "long", "repeated", "absent", "phrase", "case")
PHRASINGS: tuple[str, ...] = ("capital", "plural", "unquoted", "mixed", "zh")
ALL_LEVELS = LEVELS + PHRASINGS

_SHORT = (
    "apple banana cherry grape lemon mango melon peach pear plum orange table chair house "
    "garden river stone paper pencil window letter summer winter spring coffee butter dinner "
    "rabbit kitten puppy yellow purple silver bottle little middle happy sunny hello school "
    "street green sheep bubble pepper cookie balloon button carrot tomato potato jelly berry "
    "cotton ladder mirror pillow hammer bridge island jungle forest desert candle kettle "
)
_LONG = (
    "strawberry mississippi bookkeeper assessment possession occurrence accommodation "
    "onomatopoeia unbelievable extraordinary independence responsibility characteristic "
    "refrigerator understanding mathematics hippopotamus encyclopedia congratulations "
    "temperature communication successfully embarrassment parallelogram international "
    "photosynthesis intelligence environmental transportation abracadabra bureaucracy "
    "entrepreneur millennium conscientious chrysanthemum mediterranean grasshopper "
    "caterpillar butterfingers raspberries blueberries cheeseburger "
)
SHORT_WORDS = tuple(_SHORT.split())
LONG_WORDS = tuple(_LONG.split())  # 10 letters or more

_TEMPLATES = (
    'How many times does the letter "{letter}" appear in "{text}"?',
    'Count the letter "{letter}" in "{text}". How many are there?',
    'In "{text}", how many times does the letter "{letter}" occur?',
)
# The plain phrasing, used for single words only (a phrase needs its quotes).
_WORD_TEMPLATE = "How many letters {letter} are in the word {text}?"
_CASE_NOTE = " Count upper-case and lower-case letters alike."
# How people ask (written here; a letter counts in either case).
_PHRASED = {
    "capital": (
        "How many times is the letter {L} used in {Word}?",
        "How many {L}'s are in {word}?",
        "How many letters {L} does the word {Word} have?",
        "Count the {L}s in {word}.",
    ),
    "plural": (
        "How many {l}'s are in {word}?",
        "how many {l}s in {word}",
        "How many {l}'s does the word {word} have?",
        "{word} has how many {l}'s?",
    ),
    "unquoted": (
        "how many {l} in {word}",
        "count {l} in {word}",
        "number of {l} in {word}?",
        "{l} in {word}: how many?",
    ),
    "mixed": (
        "How many letters {l} are in {Mixed}?",
        "How many times does {l} appear in {Mixed}?",
        "Count the letter {l} in {Mixed}.",
    ),
    "zh": (
        "单词{word}里有几个{l}？",
        "{word}中有多少个字母{l}？",
        "“{word}”这个词里字母{l}出现了几次？",
        "{Word}这个单词中有几个{L}？",
        "数一数{word}里有多少个{l}。",
    ),
}


def _repeated_pairs() -> list[tuple[str, str]]:
    pairs = []
    for word in (*SHORT_WORDS, *LONG_WORDS):
        for letter in sorted(set(word)):
            if word.count(letter) >= 3:
                pairs.append((word, letter))
    return pairs


_REPEATED = _repeated_pairs()


def _mixed_case(rng: random.Random, text: str) -> str:
    styles = (
        str.title,
        str.upper,
        lambda t: "".join(rng.choice((c.lower(), c.upper())) for c in t),
    )
    return rng.choice(styles)(text)


def _pick(rng: random.Random, level: str) -> tuple[str, str, bool]:
    """(text, letter, is_phrase) for one item of ``level``."""
    if level == "short":
        word = rng.choice(SHORT_WORDS)
        return word, rng.choice(sorted(set(word))), False
    if level == "long":
        word = rng.choice(LONG_WORDS)
        return word, rng.choice(sorted(set(word))), False
    if level == "repeated":
        word, letter = rng.choice(_REPEATED)
        return word, letter, False
    if level == "absent":
        word = rng.choice((*SHORT_WORDS, *LONG_WORDS))
        return word, rng.choice(sorted(set(string.ascii_lowercase) - set(word))), False
    if level in ("phrase", "case"):
        words = rng.sample(
            (*SHORT_WORDS, *LONG_WORDS), rng.randint(2, 4) if level == "phrase" else 2
        )
        text = " ".join(words)
        return text, rng.choice(sorted(set(text) - {" "})), True
    if level in PHRASINGS:
        word = rng.choice((*SHORT_WORDS, *LONG_WORDS, *(w for w, _ in _REPEATED)))
        return word, rng.choice(sorted(set(word))), False
    raise ValueError(f"unknown letters level {level!r}: use one of {', '.join(ALL_LEVELS)}")


def _phrased(rng: random.Random, level: str, word: str, letter: str) -> tuple[str, int]:
    """A question in one of the phrasings people use, and its count in either case."""
    template = rng.choice(_PHRASED[level])
    mixed = _mixed_case(rng, word)
    while mixed in (word, word.capitalize()):  # mixed case: not merely capitalised
        mixed = _mixed_case(rng, word)
    question = template.format(
        l=letter, L=letter.upper(), word=word, Word=word.capitalize(), Mixed=mixed
    )
    return question, word.lower().count(letter.lower())


def letters_item(index: int, seed: int = 0, level: str = "short", *, item_id: str = "") -> Item:
    """Item ``index`` of ``level`` for ``seed``: always the same question and answer."""
    # A string seed is hashed with SHA-512 by `random`, the same on every platform and version.
    rng = random.Random(f"letters:{seed}:{level}:{index}")
    text, letter, is_phrase = _pick(rng, level)
    if level in PHRASINGS:
        question, count = _phrased(rng, level, text, letter)
        return Item(
            id=item_id or f"letters-{level}-{seed}-{index:04d}",
            question=question,
            answer=str(count),
            level=level,
        )
    count = text.count(letter)
    asked = letter
    if level == "case":
        text = _mixed_case(rng, text)
        count = text.lower().count(letter)
        # Ask in the case that makes it hardest: the one that occurs least in the text.
        asked = letter.upper() if text.count(letter.upper()) < text.count(letter) else letter
    templates = _TEMPLATES if is_phrase else (*_TEMPLATES, _WORD_TEMPLATE)
    question = rng.choice(templates).format(letter=asked, text=text)
    if level == "case":
        question += _CASE_NOTE
    return Item(
        id=item_id or f"letters-{level}-{seed}-{index:04d}",
        question=question,
        answer=str(count),
        level=level,
    )


def generate(n: int, seed: int = 0, levels: tuple[str, ...] = LEVELS) -> list[Item]:
    """``n`` items cycling through ``levels`` (so every level gets a fair share)."""
    if not levels:
        raise ValueError("no letters level given")
    for level in levels:
        if level not in ALL_LEVELS:
            raise ValueError(f"unknown letters level {level!r}: use one of {', '.join(ALL_LEVELS)}")
    mixed = len(levels) > 1
    # The phrasings' ids name them, so they never meet the original levels' ids.
    prefix = "letters-phrasings" if levels == PHRASINGS else "letters"
    items = []
    for i in range(n):
        level = levels[i % len(levels)]
        item_id = f"{prefix}-{seed}-{i:04d}" if mixed else ""
        items.append(letters_item(i // len(levels) if mixed else i, seed, level, item_id=item_id))
    return items
