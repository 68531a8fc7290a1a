"""Card state: the scorer's cache of the cards it owns, and their DynamoDB items."""

import pytest

from consumers.card_state import BehaviorCache, BehaviorStore, StaleStateError, behavior_item
from model.behavior import CardBehavior
from schemas.behavior import decode_state


def test_cache_evicts_least_recently_used_but_never_unsaved_states():
    cache = BehaviorCache(capacity=2)
    for token in ("a", "b", "c"):
        cache[token] = CardBehavior()
    cache.touch(["a", "b", "c"])  # all three changed since the last checkpoint
    assert set(cache) == {"a", "b", "c"}
    cache.dirty.clear()  # a checkpoint wrote them
    cache["d"] = CardBehavior()
    cache.touch(["d"])
    assert list(cache) == ["c", "d"]


def test_unsaved_states_beyond_the_capacity_overflow_oldest_first_and_go_once_saved():
    cache = BehaviorCache(capacity=2)
    for token in ("a", "b", "c", "d"):
        cache[token] = CardBehavior()
    cache.touch(["a", "b", "c", "d"])
    cache.touch(["a"])  # used again: the most recent
    assert cache.overflow() == ["b", "c"]
    cache.drop_saved(cache.overflow())
    assert list(cache) == ["d", "a"] and cache.dirty == {"a", "d"} and cache.overflow() == []


class FakeDynamoDB:
    """The two calls the store makes, with PutItem's two conditions."""

    def __init__(self):
        self.items: dict[str, dict] = {}

    def batch_get_item(self, RequestItems):  # noqa: N803 - boto3's names
        ((table, request),) = RequestItems.items()
        found = [self.items[k["card_token"]["S"]] for k in request["Keys"] if k["card_token"]["S"] in self.items]
        return {"Responses": {table: found}}

    def get_item(self, TableName, Key, ConsistentRead, ProjectionExpression, ExpressionAttributeNames):  # noqa: N803
        stored = self.items.get(Key["card_token"]["S"])
        return {} if stored is None else {"Item": {"version": stored["version"], "state": stored["state"]}}

    def put_item(self, TableName, Item, ConditionExpression, ExpressionAttributeValues=None):  # noqa: N803
        stored = self.items.get(Item["card_token"]["S"])
        if ConditionExpression == "attribute_not_exists(card_token)":
            ok = stored is None
        else:
            ok = stored is not None and stored["version"] == ExpressionAttributeValues[":v"]
        if not ok:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "PutItem")
        self.items[Item["card_token"]["S"]] = Item


def card(*amounts: float) -> CardBehavior:
    state = CardBehavior()
    for i, amt in enumerate(amounts):
        state.apply(1_546_300_800 + 60 * i, amt, "travel", (0, i))
    return state


def test_states_round_trip_through_the_store_with_readable_aggregates():
    db = FakeDynamoDB()
    store = BehaviorStore(db, "customer_behavior")
    store.save_many({"a" * 32: card(10.0, 30.0)})
    item = db.items["a" * 32]
    assert (item["txn_count"], item["amount_sum"], item["watermark_offset"]) == ({"N": "2"}, {"N": "40"}, {"N": "1"})
    assert item == behavior_item("a" * 32, card(10.0, 30.0), 1)
    loaded = store.load_many(["a" * 32, "b" * 32])
    assert list(loaded) == ["a" * 32] and loaded["a" * 32].count == 2 and loaded["a" * 32].version == 1
    assert decode_state(item)[1] == loaded["a" * 32].to_dict()


def test_a_writer_holding_an_old_state_is_fenced_off():
    db = FakeDynamoDB()
    mine, theirs = BehaviorStore(db, "t"), BehaviorStore(db, "t")
    mine.save_many({"c" * 32: card(5.0)})
    stale = mine.load_many(["c" * 32])["c" * 32]
    fresh = theirs.load_many(["c" * 32])["c" * 32]
    fresh.apply(1_546_400_000, 7.0, "travel", (0, 5))
    theirs.save_many({"c" * 32: fresh})  # the new owner of the partition wrote first
    stale.apply(1_546_400_000, 9.0, "travel", (0, 5))
    try:
        mine.save_many({"c" * 32: stale})
    except StaleStateError:
        pass
    else:
        raise AssertionError("a stale writer overwrote newer aggregates")
    assert db.items["c" * 32]["amount_max"] == {"N": "7"}
    assert stale.version == 1  # not bumped: the write did not happen


def test_a_write_that_landed_before_the_sdk_retried_it_is_not_taken_for_a_stale_state():
    """A put whose answer was lost (the connection dropped after the write) is retried by the SDK,
    and the retry's condition fails on that very write: the store sees its own item and goes on."""
    db = FakeDynamoDB()
    store = BehaviorStore(db, "t")
    state = card(5.0)
    store.save_many({"d" * 32: state})
    state.apply(1_546_400_000, 9.0, "travel", (0, 5))
    db.items["d" * 32] = behavior_item("d" * 32, state, 2)  # the first attempt's write
    store.save_many({"d" * 32: state})  # the retry: version 1 expected, 2 found, but it is ours
    assert state.version == 2 and db.items["d" * 32] == behavior_item("d" * 32, state, 2)
    other = card(5.0, 7.0)
    other.version = 1
    db.items["e" * 32] = behavior_item("e" * 32, card(5.0, 8.0), 2)  # someone else's version 2
    with pytest.raises(StaleStateError) as stale:  # another writer's state is not taken for this one's
        store.save_many({"e" * 32: other, "f" * 32: card(1.0)})
    assert str(stale.value) == (  # what each had got to: the two writers' states
        f"card {'e' * 8}... changed under this scorer (rebalance?): stored version 2 (2 transactions, up to "
        "partition/offset [0, 1]), this write expected 1 and brings 2 transactions, up to partition/offset [0, 1]"
    )
    other.version = 0  # now two of them: the error says how many
    db.items["f" * 32] = behavior_item("f" * 32, card(2.0), 1)
    with pytest.raises(StaleStateError, match="; and 1 more of these 2 cards$"):
        store.save_many({"e" * 32: other, "f" * 32: card(1.0)})
