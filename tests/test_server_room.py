"""Room rules with no sockets: joins, refusals, history, broadcast order, leave and drop."""

from __future__ import annotations

import pytest

from tuichat.errors import CommandFailed
from tuichat.protocol import ErrorCode, Joined, Left, MessageEvent, Published, State, Unpublished, Updated
from tuichat.protocol.messages import ServerMessage
from tuichat.server.room import Registry


class Inbox(list[ServerMessage]):
    def __call__(self, message: ServerMessage) -> None:
        self.append(message)

    def kinds(self) -> list[str]:
        return [type(m).__name__ for m in self]


def test_first_join_makes_the_room_and_last_leave_drops_it() -> None:
    registry = Registry()
    alice_inbox = Inbox()
    alice = registry.join("lobby", "alice", alice_inbox)
    assert list(registry.rooms) == ["lobby"]
    assert isinstance(alice_inbox[0], State)
    registry.leave(alice)
    assert registry.rooms == {}
    registry.leave(alice)  # idempotent


def test_joiner_gets_state_and_others_get_joined() -> None:
    registry = Registry()
    alice_inbox, bob_inbox = Inbox(), Inbox()
    alice = registry.join("lobby", "alice", alice_inbox)
    bob = registry.join("lobby", "bob", bob_inbox)
    assert alice_inbox.kinds() == ["State", "Joined"]
    state = bob_inbox[0]
    assert isinstance(state, State)
    assert [p.name for p in state.participants] == ["alice", "bob"]
    assert state.you.id == bob.id != alice.id


def test_a_member_dropped_by_the_joined_broadcast_leaves_the_room_to_the_joiner() -> None:
    """A JOINED that fills the only other member's outbox makes them leave mid-join: the room was
    dropped as empty and the joiner added to a room nobody else could find."""
    registry = Registry()
    slow: list[object] = []

    def overflowing(message: ServerMessage) -> None:
        if isinstance(message, Joined):
            registry.leave(slow[0], reason="too slow to read messages")  # type: ignore[arg-type]

    slow.append(registry.join("lobby", "slow", overflowing))
    newcomer_inbox = Inbox()
    newcomer = registry.join("lobby", "newcomer", newcomer_inbox)
    assert registry.rooms["lobby"] is newcomer.room
    assert [m.name for m in newcomer.room] == ["newcomer"]
    assert newcomer_inbox.kinds() == ["State", "Left"]  # STATE first, then the news of the drop
    later = registry.join("lobby", "later", Inbox())
    assert later.room is newcomer.room


def test_the_last_two_leaving_at_once_drop_the_room_once() -> None:
    """Adversarial QA: the LEFT of one of two members overflowed the other's outbox, whose nested
    leave emptied and dropped the room; the outer leave dropped it again (KeyError), and the
    connection's clean-up was skipped."""
    registry = Registry()
    members: dict[str, object] = {}

    def overflowing(message: ServerMessage) -> None:
        if isinstance(message, Left):
            registry.leave(members["slow"], reason="too slow to read messages")  # type: ignore[arg-type]

    members["slow"] = registry.join("lobby", "slow", overflowing)
    leaver = registry.join("lobby", "leaver", Inbox())
    registry.leave(leaver)
    assert registry.rooms == {}
    again = registry.join("lobby", "again", Inbox())  # the name is free for a fresh room
    assert registry.rooms["lobby"] is again.room


def test_a_lookalike_of_a_present_name_is_taken() -> None:
    """Adversarial QA: fullwidth and mathematical letters, and a variation selector, passed for 'watcher'."""
    registry = Registry()
    registry.join("lobby", "watcher", Inbox())
    for lookalike in ("ｗａｔｃｈｅｒ", "𝐰𝐚𝐭𝐜𝐡𝐞𝐫", "watcher\ufe0f"):
        with pytest.raises(CommandFailed) as caught:
            registry.join("lobby", lookalike, Inbox())
        assert caught.value.code == ErrorCode.NAME_TAKEN and "'watcher'" in caught.value.reason


def test_names_are_unique_per_room_ignoring_case() -> None:
    registry = Registry()
    registry.join("lobby", "Alice", Inbox())
    with pytest.raises(CommandFailed) as caught:
        registry.join("lobby", "alice", Inbox())
    assert caught.value.code == ErrorCode.NAME_TAKEN
    registry.join("other", "alice", Inbox())  # another room is fine


def test_resume_token_replaces_a_stale_member() -> None:
    registry = Registry()
    old_inbox, watcher = Inbox(), Inbox()
    evicted: list[str] = []
    old = registry.join("lobby", "alice", old_inbox)
    old.evict = evicted.append
    registry.join("lobby", "bob", watcher)
    with pytest.raises(CommandFailed):
        registry.join("lobby", "alice", Inbox(), resume="wrong token")
    new = registry.join("lobby", "alice", Inbox(), resume=old.resume_token)
    assert new.id != old.id
    assert evicted == ["replaced by a new connection"]
    assert watcher.kinds()[-2:] == ["Left", "Joined"]


def test_capacity_is_enforced() -> None:
    registry = Registry(max_participants=2)
    registry.join("small", "a", Inbox())
    registry.join("small", "b", Inbox())
    with pytest.raises(CommandFailed) as caught:
        registry.join("small", "c", Inbox())
    assert caught.value.code == ErrorCode.ROOM_FULL
    assert "full (2 participants)" in caught.value.reason


@pytest.mark.parametrize(("room", "name", "code"), [
    ("a b", "alice", ErrorCode.INVALID_ROOM), ("", "alice", ErrorCode.INVALID_ROOM),
    ("lobby", "", ErrorCode.INVALID_NAME), ("lobby", "\x1b[2J", ErrorCode.INVALID_NAME),
])
def test_bad_names_are_refused(room: str, name: str, code: ErrorCode) -> None:
    with pytest.raises(CommandFailed) as caught:
        Registry().join(room, name, Inbox())
    assert caught.value.code == code
    assert Registry().rooms == {}


def test_history_keeps_the_last_fifty_public_messages() -> None:
    registry = Registry()
    alice = registry.join("lobby", "alice", Inbox())
    assert alice.room is not None
    for n in range(60):
        alice.room.say(alice, f"message {n}")
    bob_inbox = Inbox()
    registry.join("lobby", "bob", bob_inbox)
    state = bob_inbox[0]
    assert isinstance(state, State)
    assert [m.text for m in state.history] == [f"message {n}" for n in range(10, 60)]
    assert [m.id for m in state.history] == list(range(11, 61))


def test_private_messages_reach_only_sender_and_recipient_and_skip_history() -> None:
    registry = Registry()
    inboxes = {name: Inbox() for name in ("alice", "bob", "carol")}
    members = {name: registry.join("lobby", name, inbox) for name, inbox in inboxes.items()}
    for inbox in inboxes.values():
        inbox.clear()
    room = members["alice"].room
    assert room is not None
    room.say(members["alice"], "psst", to=members["bob"].id)
    assert inboxes["alice"].kinds() == ["MessageEvent"] and inboxes["bob"].kinds() == ["MessageEvent"]
    assert inboxes["carol"] == []
    assert list(room.history) == []
    with pytest.raises(CommandFailed) as caught:
        room.say(members["alice"], "hello?", to="p-nobody")
    assert caught.value.code == ErrorCode.UNKNOWN_PARTICIPANT


def test_publish_mute_and_leave_while_publishing() -> None:
    registry = Registry()
    watcher = Inbox()
    registry.join("lobby", "watcher", watcher)
    alice = registry.join("lobby", "alice", Inbox())
    watcher.clear()
    registry.publish(alice, audio=True, video=True)
    registry.mute(alice, audio=True, video=None)
    registry.leave(alice)
    assert watcher.kinds() == ["Published", "Updated", "Unpublished", "Left"]
    updated = watcher[1]
    assert isinstance(updated, Updated) and updated.participant.stream is not None
    assert updated.participant.stream.audio_muted and not updated.participant.stream.video_muted
    assert isinstance(watcher[0], Published) and isinstance(watcher[2], Unpublished)
    assert isinstance(watcher[3], Left)
    # Each event carries the participant as it leaves them: no stream after UNPUBLISHED (it had
    # the stream that ended, and clients kept showing "mic cam" for someone sending nothing).
    assert watcher[2].participant.stream is None and watcher[3].participant.stream is None


def test_message_events_carry_sender_and_server_time() -> None:
    registry = Registry()
    inbox = Inbox()
    alice = registry.join("lobby", "alice", inbox)
    assert alice.room is not None
    message = alice.room.say(alice, "[bold red]x[/]")
    event = inbox[-1]
    assert isinstance(event, MessageEvent) and event.message == message
    assert message.sender.name == "alice" and message.ts > 1e9
    assert isinstance(inbox[0], State) and not isinstance(inbox[0], Joined)


def test_a_mute_before_publishing_is_kept_and_announces_no_unpublish() -> None:
    """Adversarial QA: a mute before any publish made an unpublish broadcast UNPUBLISHED for someone
    who never published; and publishing then forgot the mute (starting muted is what it is for)."""
    registry = Registry()
    watcher = Inbox()
    registry.join("lobby", "watcher", watcher)
    alice = registry.join("lobby", "alice", Inbox())
    registry.mute(alice, audio=True, video=None)
    registry.unpublish(alice)
    assert "Unpublished" not in watcher.kinds()
    registry.publish(alice, audio=True, video=True)
    assert alice.stream is not None and alice.stream.audio_muted and not alice.stream.video_muted
    registry.leave(alice)
    assert watcher.kinds()[-2:] == ["Unpublished", "Left"]


def test_publishing_nothing_is_unpublishing() -> None:
    """QA: publish with neither medium was announced as PUBLISHED, and the unpublish after it as
    nothing (the server saw nobody publishing): clients showed someone sending nothing for ever."""
    registry = Registry()
    watcher = Inbox()
    registry.join("lobby", "watcher", watcher)
    alice = registry.join("lobby", "alice", Inbox())
    registry.mute(alice, audio=True, video=None)
    watcher.clear()
    registry.publish(alice, audio=False, video=False)  # not publishing: nothing to tell, the mute kept
    assert watcher.kinds() == [] and alice.stream is not None and alice.stream.audio_muted
    registry.publish(alice, audio=True, video=True)
    registry.publish(alice, audio=False, video=False)
    registry.unpublish(alice)
    assert watcher.kinds() == ["Published", "Unpublished"]
    assert isinstance(watcher[1], Unpublished) and watcher[1].participant.stream is None
    assert alice.stream is None


def test_a_resume_token_that_is_not_ascii_is_refused_as_such() -> None:
    """Adversarial QA: a non-ASCII token raised TypeError in compare_digest: an internal error."""
    registry = Registry()
    registry.join("lobby", "alice", Inbox())
    with pytest.raises(CommandFailed) as caught:
        registry.join("lobby", "alice", Inbox(), resume="é")
    assert caught.value.code == ErrorCode.NAME_TAKEN
