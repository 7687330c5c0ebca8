"""Which Slack message each notice became (issue 16.1): its channel and `ts`, by delivery id,
so a repeated delivery updates that message (chat.update) instead of posting a second one, and
a decision taken in Slack updates the message it was taken on."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import String, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from devops_agent.memory.db import Base, Database, make_engine
from devops_agent.state import utcnow


class SlackMessage(Base):
    __tablename__ = "slack_messages"

    delivery_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    channel: Mapped[str] = mapped_column(String(64))
    ts: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[str] = mapped_column(String(40))


@dataclass(frozen=True)
class Posted:
    channel: str
    ts: str


class SlackMessages(Database):
    @classmethod
    def from_url(cls, database_url: str) -> SlackMessages:
        return cls(make_engine(database_url), name="slack-db")

    async def of_delivery(self, delivery_id: str) -> Posted | None:
        await self.setup()

        def read() -> Posted | None:
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(SlackMessage.channel, SlackMessage.ts).where(
                        SlackMessage.delivery_id == delivery_id
                    )
                ).first()
            return Posted(row.channel, row.ts) if row else None

        return await self.call(read)

    async def of_request(self, run_id: str, request_id: str) -> Posted | None:
        await self.setup()

        def read() -> Posted | None:
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(SlackMessage.channel, SlackMessage.ts).where(
                        SlackMessage.run_id == run_id, SlackMessage.request_id == request_id
                    )
                ).first()
            return Posted(row.channel, row.ts) if row else None

        return await self.call(read)

    async def record(
        self, delivery_id: str, run_id: str, request_id: str | None, posted: Posted
    ) -> None:
        def write() -> None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        insert(SlackMessage).values(
                            delivery_id=delivery_id,
                            run_id=run_id,
                            request_id=request_id,
                            channel=posted.channel,
                            ts=posted.ts,
                            created_at=utcnow(),
                        )
                    )
            except IntegrityError:
                pass  # recorded by an earlier try

        await self.call(write)
