"""The kept responses: bounded by count and by characters, least recently used first, per key."""

from __future__ import annotations

from thinkchain.proxy.response_store import ResponseStore, owner_of


def turn(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]


def test_the_least_recently_used_go_first_when_the_count_is_reached() -> None:
    store = ResponseStore(max_entries=2)
    store.put("a", None, turn("a"))
    store.put("b", None, turn("b"))
    assert store.get("a", None) is not None  # a is now the most recently used
    store.put("c", None, turn("c"))
    assert store.get("b", None) is None
    assert store.get("a", None) is not None and store.get("c", None) is not None
    assert len(store) == 2


def test_characters_bound_the_store_too() -> None:
    store = ResponseStore(max_entries=100, max_chars=1000)
    store.put("small", None, turn("x" * 100))
    store.put("large", None, turn("y" * 900))
    assert store.get("small", None) is None  # dropped to make room
    assert store.get("large", None) is not None
    store.put("huge", None, turn("z" * 5000))  # larger than the whole store: not kept
    assert store.get("huge", None) is None
    assert store.get("large", None) is not None


def test_a_response_belongs_to_its_key() -> None:
    store = ResponseStore(max_entries=10)
    alice, bob = owner_of("Bearer a", keyed=True), owner_of("Bearer b", keyed=True)
    store.put("r", alice, turn("hello"))
    assert store.get("r", bob) is None
    assert store.get("r", alice) == tuple(turn("hello"))
    assert owner_of("Bearer a", keyed=False) is None  # an open server: everyone is nobody


def test_a_store_of_size_zero_keeps_nothing() -> None:
    store = ResponseStore(max_entries=0)
    store.put("r", None, turn("hello"))
    assert not store.enabled and store.get("r", None) is None
