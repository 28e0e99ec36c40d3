"""Follow-up questions: a first question, then one that leans on it ("and in raspberry?").

A follow-up must think exactly as a first question does.  Each pair is asked as a
conversation: the first question in the same mode, its answer kept as the turn before, then the
follow-up, which alone is scored.  ``followups:standalone`` asks each follow-up rewritten to
stand on its own instead, for comparison.  Kinds: ``letters`` (counting letters of a word named
before or after), ``arithmetic`` (a calculation on the earlier result), in English and Chinese.
Letter answers are counted here, so they cannot be wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from thinkchain.eval.items import Item

VARIANTS = ("conversation", "standalone")


@dataclass(frozen=True)
class Pair:
    id: str
    first: str
    follow_up: str
    standalone: str  # the follow-up as a question of its own
    answer: str


def _letters(word: str, letter: str) -> str:
    return str(word.count(letter))


PAIRS: tuple[Pair, ...] = (
    # -- letters, English ------------------------------------------------------------------
    Pair(
        "en-letters-raspberry",
        "How many letters r are in the word strawberry?",
        "And how many in the word raspberry?",
        "How many letters r are in the word raspberry?",
        _letters("raspberry", "r"),
    ),
    Pair(
        "en-letters-excellence",
        "How many letters r are in the word strawberry?",
        "What about the letter e in the word excellence?",
        "How many letters e are in the word excellence?",
        _letters("excellence", "e"),
    ),
    Pair(
        "en-letters-mississippi-p",
        "How many times does the letter s appear in the word mississippi?",
        "And the letter p in the same word?",
        "How many times does the letter p appear in the word mississippi?",
        _letters("mississippi", "p"),
    ),
    Pair(
        "en-letters-banana-n",
        "Count the letter a in the word banana.",
        "Now count the letter n in it.",
        "Count the letter n in the word banana.",
        _letters("banana", "n"),
    ),
    Pair(
        "en-letters-bookkeeper-e",
        "How many letters o are in the word bookkeeper?",
        "And how many letters e?",
        "How many letters e are in the word bookkeeper?",
        _letters("bookkeeper", "e"),
    ),
    Pair(
        "en-letters-illegally",
        "How many letters l are in the word parallel?",
        "And in the word illegally?",
        "How many letters l are in the word illegally?",
        _letters("illegally", "l"),
    ),
    Pair(
        "en-letters-committee-m",
        "How many letters t are in the word committee?",
        "And the letter m?",
        "How many letters m are in the word committee?",
        _letters("committee", "m"),
    ),
    Pair(
        "en-letters-assess",
        "How many letters s are in the word possessions?",
        "And in the word assess?",
        "How many letters s are in the word assess?",
        _letters("assess", "s"),
    ),
    Pair(
        "en-letters-giggling-i",
        "How many times does the letter g appear in the word giggling?",
        "And the letter i in it?",
        "How many times does the letter i appear in the word giggling?",
        _letters("giggling", "i"),
    ),
    # -- arithmetic on the earlier result, English -------------------------------------------
    Pair(
        "en-arith-times-3",
        "What is 17 * 24?",
        "And what is that times 3?",
        "What is 17 * 24 * 3?",
        "1224",
    ),
    Pair(
        "en-arith-shirts",
        "A shirt costs 12 dollars. How much do 5 shirts cost?",
        "And if each shirt is 3 dollars cheaper?",
        "A shirt costs 12 dollars, less 3 dollars off each. How much do 5 shirts cost?",
        "45",
    ),
    Pair(
        "en-arith-apples",
        "Tom has 48 apples and gives away a quarter of them. How many does he have left?",
        "He then buys 15 more. How many does he have now?",
        "Tom has 48 apples, gives away a quarter of them, then buys 15 more. "
        "How many does he have now?",
        "51",
    ),
    Pair(
        "en-arith-train",
        "A train travels at 80 km per hour for 3 hours. How far does it go?",
        "How many hours would the same distance take at 60 km per hour?",
        "A train travels at 80 km per hour for 3 hours. How many hours would the same "
        "distance take at 60 km per hour?",
        "4",
    ),
    Pair(
        "en-arith-percent",
        "What is 15% of 240?",
        "And what is left of 240 after taking that away?",
        "What is left of 240 after taking away 15% of it?",
        "204",
    ),
    Pair(
        "en-arith-pages",
        "Anna reads 25 pages a day. How many pages does she read in 2 weeks?",
        "Her book has 500 pages. How many pages are left after those two weeks?",
        "Anna's book has 500 pages and she reads 25 pages a day. How many pages are left "
        "after 2 weeks?",
        "150",
    ),
    Pair(
        "en-arith-sum-100",
        "What is the sum of the whole numbers from 1 to 100?",
        "Now divide that by 5.",
        "What is the sum of the whole numbers from 1 to 100, divided by 5?",
        "1010",
    ),
    Pair(
        "en-arith-rectangle",
        "A rectangle is 12 cm long and 7 cm wide. What is its area in square cm?",
        "What is its perimeter in cm?",
        "A rectangle is 12 cm long and 7 cm wide. What is its perimeter in cm?",
        "38",
    ),
    Pair(
        "en-arith-minutes-week",
        "How many minutes are there in a day?",
        "And in a week?",
        "How many minutes are there in a week?",
        "10080",
    ),
    Pair(
        "en-arith-change",
        "I buy 3 notebooks at 4.50 dollars each. How much do I pay?",
        "How much change do I get from a 20 dollar bill?",
        "I buy 3 notebooks at 4.50 dollars each and pay with a 20 dollar bill. "
        "How much change do I get?",
        "6.5",
    ),
    Pair(
        "en-arith-half",
        "What is 2 to the power of 10?",
        "And half of that?",
        "What is half of 2 to the power of 10?",
        "512",
    ),
    Pair(
        "en-arith-pizza",
        "A pizza is cut into 8 slices and 3 friends eat 2 slices each. How many slices are left?",
        "They order a second pizza of 8 slices and eat 5 of those. How many slices are left "
        "in total?",
        "Two pizzas have 8 slices each. From the first, 3 friends eat 2 slices each; from the "
        "second they eat 5 slices. How many slices are left in total?",
        "5",
    ),
    # -- Chinese ---------------------------------------------------------------------------
    Pair(
        "zh-letters-raspberry",
        "strawberry中有多少个字母r？",
        "那 raspberry 里呢？",
        "raspberry中有多少个字母r？",
        _letters("raspberry", "r"),
    ),
    Pair(
        "zh-letters-banana-n",
        "单词banana里有几个字母a？",
        "字母n呢？",
        "单词banana里有几个字母n？",
        _letters("banana", "n"),
    ),
    Pair(
        "zh-letters-mississippi-i",
        "单词 mississippi 中字母 s 出现了几次？",
        "那字母 i 呢？",
        "单词 mississippi 中字母 i 出现了几次？",
        _letters("mississippi", "i"),
    ),
    Pair(
        "zh-letters-bookkeeper",
        "bookkeeper这个单词里有几个字母o？",
        "那 e 有几个？",
        "bookkeeper这个单词里有几个字母e？",
        _letters("bookkeeper", "e"),
    ),
    Pair(
        "zh-arith-times-3", "17乘以24等于多少？", "再乘以3呢？", "17乘以24再乘以3等于多少？", "1224"
    ),
    Pair(
        "zh-arith-candy",
        "小明有36颗糖，平均分给4个朋友，每人分几颗？",
        "如果再多来2个朋友，每人分几颗？",
        "小明有36颗糖，平均分给6个朋友，每人分几颗？",
        "6",
    ),
    Pair(
        "zh-arith-book",
        "一本书有120页，小红每天看15页，几天能看完？",
        "如果每天多看5页呢？",
        "一本书有120页，小红每天看20页，几天能看完？",
        "6",
    ),
    Pair(
        "zh-arith-discount",
        "一件衣服原价200元，打八折后多少钱？",
        "再减20元呢？",
        "一件衣服原价200元，打八折后再减20元，多少钱？",
        "140",
    ),
    Pair(
        "zh-arith-square",
        "一个正方形边长是9厘米，面积是多少平方厘米？",
        "周长是多少厘米？",
        "一个正方形边长是9厘米，周长是多少厘米？",
        "36",
    ),
)


def items(variant: str = "conversation", n: int | None = None) -> list[Item]:
    """The pairs as items: the follow-up after its first question, or standing alone."""
    if variant not in VARIANTS:
        raise ValueError(f"followups has the variants {', '.join(VARIANTS)}, not {variant!r}")
    pairs = PAIRS if n is None else PAIRS[:n]
    if variant == "standalone":
        return [Item(p.id, p.standalone, p.answer, level=_kind(p.id)) for p in pairs]
    return [Item(p.id, p.follow_up, p.answer, level=_kind(p.id), before=(p.first,)) for p in pairs]


def _kind(pair_id: str) -> str:
    lang, kind, _ = pair_id.split("-", 2)
    return f"{lang}-{kind}"
