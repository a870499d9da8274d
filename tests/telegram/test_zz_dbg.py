import asyncio, sys
import pytest
from tests.fakes.bot_api import FakeBotApi

@pytest.fixture
async def api():
    a = FakeBotApi(); await a.start()
    yield a
    print("stopping", file=sys.stderr)
    task = asyncio.create_task(a.stop())
    done, _ = await asyncio.wait({task}, timeout=3)
    if not done:
        for t in asyncio.all_tasks():
            print("TASK", t, file=sys.stderr)
            t.print_stack(file=sys.stderr)
    await task

async def test_x(api):
    pass
