"""The conversation on the page: the turns that have ended, and the one asked last.

A turn is one chain (and the direct answer beside it, when compared).  The turn asked last is
held as :class:`LiveRun` objects while it runs and a little after, so the page can still show
what only the run knows (the self-consistency vote, a history write that failed); asking the
next question moves it, as the history keeps it, among the turns that have ended.  Nothing
here imports Streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from thinkchain.history import ChainRecord, Conversation
from thinkchain.ui.live import LiveRun


@dataclass
class Chat:
    id: str = ""  # the id of the conversation's first chain; "" before the first question
    turns: list[ChainRecord] = field(default_factory=list)  # ended, oldest first
    run: LiveRun | None = None  # the chain asked last
    direct: LiveRun | None = None  # the direct answer beside it, when comparing
    from_history: bool = False  # reopened from the history (else begun on this page)

    @classmethod
    def reopened(cls, conversation: Conversation) -> Chat:
        return cls(conversation.id, list(conversation.turns), from_history=True)

    @property
    def running(self) -> bool:
        return any(run is not None and not run.done for run in (self.run, self.direct))

    @property
    def empty(self) -> bool:
        return not self.turns and self.run is None

    def last(self) -> ChainRecord | None:
        """The turn asked last, with its direct answer, once both have ended."""
        if self.run is None or self.running:
            return None
        record = self.run.record()
        if record is not None and self.direct is not None:
            record.paired = self.direct.record()
        return record

    def conversation(self) -> Conversation:
        """Every turn that has ended, as the history keeps them."""
        last = self.last()
        return Conversation(self.id, [*self.turns, *([last] if last is not None else [])])

    def pending(self) -> Conversation | None:
        """The conversation as the history list shows it while its first question runs, before
        the history may have recorded it; None for any other turn (the history lists those)."""
        run = self.run
        if run is None or self.turns or not self.id or not self.running:
            return None
        turn = ChainRecord(
            id=run.chain_id or self.id,
            created_at=run.created_at,
            question=run.question,
            status="running",
            model=run.snapshot().model,
            backend=run.backend,
            source="ui",
            conversation=self.id,
        )
        return Conversation(self.id, [turn])

    def context(self) -> list[dict[str, str]]:
        """What the next question is asked after: the earlier questions and their answers."""
        return self.conversation().context()

    def ask(self, run: LiveRun, direct: LiveRun | None) -> None:
        """The next turn starts: the one before it joins the turns that have ended."""
        last = self.last()
        if last is not None:
            self.turns.append(last)
        if not self.id:
            self.id = run.conversation
        self.run, self.direct = run, direct

    def stop(self) -> None:
        """Cancel the turn that runs; the steps it finished stay."""
        runs = [run for run in (self.run, self.direct) if run is not None]
        for run in runs:
            if not run.done:
                run.cancel_token.cancel()
        for run in runs:
            run.wait(timeout=10)
