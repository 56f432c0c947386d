"""Claims and leases: one row per user, the earliest first, lost claims, takeover, release."""

from __future__ import annotations

from helpers import conversation
from store_support import LEASE, claim_next, msg

from domain.types import MessageState, Role, Turn
from storage.schema import inbox
from storage.store import Store

# ---------------------------------------------------------------------------------------------
# Claims


async def test_claimable_lists_one_row_per_user_the_earliest(store: Store) -> None:
    await store.recorder.record(
        [
            msg("a1", user="A", ts=100),
            msg("b1", user="B", ts=101),
            msg("a2", user="A", ts=102),
            msg("b2", user="B", ts=103),
            msg("c1", user="C", ts=104),
        ]
    )
    listed = await store.inbox.claimable(10)
    assert [key for _, key in listed] == [conversation(u) for u in "ABC"]
    rows = [await store.inbox.claim(row_id, user, "w1", LEASE) for row_id, user in listed]
    assert [r.message_id for r in rows if r] == ["a1", "b1", "c1"]
    assert len(await store.inbox.claimable(1)) == 0  # all three users now busy


async def test_claimable_respects_limit(store: Store) -> None:
    await store.recorder.record([msg(f"m{i}", user=f"U{i}", ts=i + 1) for i in range(5)])
    assert len(await store.inbox.claimable(2)) == 2


async def test_second_claim_of_same_row_loses(store: Store) -> None:
    await store.recorder.record([msg("wamid.1")])
    [(row_id, conversation_key)] = await store.inbox.claimable(10)
    first = await store.inbox.claim(row_id, conversation_key, "w1", LEASE)
    assert first is not None and first.attempts == 1
    assert await store.inbox.claim(row_id, conversation_key, "w2", LEASE) is None
    assert await store.inbox.state_of("wamid.1") == MessageState.PROCESSING


async def test_users_next_message_waits_until_first_is_finished(store: Store) -> None:
    await store.recorder.record([msg("m1", ts=10), msg("m2", ts=20)])
    first_id, first = await claim_next(store)
    assert first == "m1"
    assert await store.inbox.claimable(10) == []
    ids = await _row_ids(store)
    assert await store.inbox.claim(ids["m2"], conversation("16505551234"), "w2", LEASE) is None
    assert await store.inbox.finish(first_id, "w1", MessageState.DONE) is True
    assert await store.inbox.state_of("m1") == MessageState.DONE
    [(row_id, _)] = await store.inbox.claimable(10)
    assert row_id == ids["m2"]


async def test_failed_message_unblocks_the_next(store: Store) -> None:
    await store.recorder.record([msg("m1", ts=10), msg("m2", ts=20)])
    first_id, _ = await claim_next(store)
    assert await store.inbox.finish(first_id, "w1", MessageState.FAILED, error="LLMError") is True
    assert await store.inbox.state_of("m1") == MessageState.FAILED
    assert (await claim_next(store))[1] == "m2"


async def _row_ids(store: Store) -> dict[str, int]:
    """message id -> row id, read straight from the table (the API hands out ids via claims)."""
    async with store.engine.connect() as conn:
        return {row.message_id: row.id for row in await conn.execute(inbox.select())}


async def test_expired_lease_can_be_taken_over(store: Store) -> None:
    await store.recorder.record([msg("m1")])
    [(row_id, conversation_key)] = await store.inbox.claimable(10)
    stale = await store.inbox.claim(row_id, conversation_key, "old", -1.0)
    assert stale is not None
    assert await store.inbox.claimable(10) == [(row_id, conversation_key)]
    fresh = await store.inbox.claim(row_id, conversation_key, "new", LEASE)
    assert fresh is not None and fresh.attempts == 2
    assert await store.inbox.save_reply(stale, "old", "stale answer") is None
    assert await store.inbox.mark_parts_sent(row_id, "old", 1) is False
    assert (
        await store.inbox.finish(row_id, "old", MessageState.DONE, new_turns=[Turn(Role.USER, "t")])
        is False
    )
    assert await store.inbox.state_of("m1") == MessageState.PROCESSING
    assert await store.conversations.history(conversation("16505551234"), 10, 1000) == []
    assert await store.inbox.finish(row_id, "new", MessageState.DONE) is True


async def test_live_claim_of_later_message_blocks_a_late_earlier_one(store: Store) -> None:
    await store.recorder.record([msg("later", ts=200)])
    await claim_next(store)
    await store.recorder.record([msg("earlier", ts=100)])  # arrives late, sent earlier
    assert await store.inbox.claimable(10) == []


async def test_saving_the_answer_says_whether_the_user_wrote_again_since(store: Store) -> None:
    await store.recorder.record([msg("m1", ts=100)])
    [(row_id, conversation_key)] = await store.inbox.claimable(10)
    row = await store.inbox.claim(row_id, conversation_key, "w1", LEASE)
    assert row is not None
    await store.recorder.record([msg("other user", ts=200, user="16505559999")])
    await store.recorder.record([msg("sent before", ts=99)])
    assert await store.inbox.save_reply(row, "w1", "first answer") is False
    assert await store.inbox.written_after(row) is False
    await store.recorder.record([msg("m2", ts=101)])
    assert await store.inbox.save_reply(row, "w1", "second answer") is True
    assert await store.inbox.written_after(row) is True


async def test_earlier_timestamp_recorded_later_is_answered_first(store: Store) -> None:
    await store.recorder.record([msg("second", ts=200)])
    await store.recorder.record([msg("first", ts=100)])
    assert (await claim_next(store))[1] == "first"


async def test_save_reply_and_parts_sent_survive_release(store: Store) -> None:
    await store.recorder.record([msg("m1")])
    [(row_id, conversation_key)] = await store.inbox.claimable(10)
    claimed = await store.inbox.claim(row_id, conversation_key, "w1", LEASE)
    assert claimed is not None
    assert await store.inbox.save_reply(claimed, "w1", "The answer") is False  # nothing since
    assert await store.inbox.mark_parts_sent(row_id, "w1", 2) is True
    assert await store.inbox.release_leases() == 1
    assert await store.inbox.state_of("m1") == MessageState.PENDING
    [(again, conversation_key)] = await store.inbox.claimable(10)
    row = await store.inbox.claim(again, conversation_key, "w2", LEASE)
    assert row is not None
    assert (row.reply, row.parts_sent, row.attempts) == ("The answer", 2, 2)


async def test_release_leases_counts_and_frees_only_processing(store: Store) -> None:
    await store.recorder.record([msg("a", user="A"), msg("b", user="B"), msg("c", user="C")])
    ids = await _row_ids(store)
    assert await store.inbox.claim(ids["a"], conversation("A"), "w1", LEASE) is not None
    assert await store.inbox.claim(ids["b"], conversation("B"), "w1", LEASE) is not None
    assert await store.inbox.release_leases() == 2
    assert [await store.inbox.state_of(m) for m in "abc"] == [
        MessageState.PENDING,
        MessageState.PENDING,
        MessageState.PENDING,
    ]
    assert sorted(key for _, key in await store.inbox.claimable(10)) == [
        conversation(u) for u in "ABC"
    ]
    assert await store.inbox.release_leases() == 0


async def test_count_unfinished(store: Store) -> None:
    assert await store.inbox.count_unfinished() == 0
    await store.recorder.record([msg("a", user="A"), msg("b", user="B"), msg("c", user="C")])
    ids = await _row_ids(store)
    await store.inbox.claim(ids["a"], conversation("A"), "w1", LEASE)
    await store.inbox.claim(ids["b"], conversation("B"), "w1", LEASE)
    assert await store.inbox.count_unfinished() == 3  # 1 pending + 2 processing
    assert await store.inbox.finish(ids["b"], "w1", MessageState.DONE)
    assert await store.inbox.count_unfinished() == 2
