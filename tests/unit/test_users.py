"""The users table in process: names, roles, tokens (hash only), Slack ids (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devops_agent.memory.users import User, UserError, Users, token_hash


async def test_users_add_find_remove(tmp_path: Path) -> None:
    users = Users.from_url(f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}")
    try:
        token = await users.add("ana", "approver", "U024BE7LH")
        assert await users.by_token(token) == User("ana", "approver", "token")
        assert await users.by_hash(token_hash(token)) == User("ana", "approver", "session")
        assert await users.by_slack_id("U024BE7LH") == User("ana", "approver", "slack")
        assert await users.by_token(token + "x") is None
        for name in ("policy", "System", "alertmanager", "studio", "timeout", "admin", "a:b", " "):
            with pytest.raises(UserError, match="reserved"):
                await users.add(name, "viewer")
        for name in ("-x", "a b", "x" * 101, "<script>"):
            with pytest.raises(UserError, match="not a user name"):
                await users.add(name, "viewer")
        with pytest.raises(UserError, match="role"):
            await users.add("bo", "root")
        with pytest.raises(UserError, match="Slack"):
            await users.add("bo", "viewer", "not an id")
        with pytest.raises(UserError, match="exists"):
            await users.add("ana", "viewer")
        with pytest.raises(UserError, match="exists"):
            await users.add("cy", "viewer", "U024BE7LH")
        assert [u.name for u in await users.all()] == ["ana"]
        assert all(token not in (u.token_hash, u.name) for u in await users.all())
        assert await users.remove("ana") and not await users.remove("ana")
        assert await users.by_token(token) is None
    finally:
        await users.close()


def test_roles_include_the_ones_below() -> None:
    admin, approver, viewer = (User("x", r) for r in ("admin", "approver", "viewer"))  # type: ignore[arg-type]
    assert admin.may("approver") and admin.may("viewer") and approver.may("viewer")
    assert not approver.may("admin") and not viewer.may("approver")
