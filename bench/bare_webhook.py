"""The peer for the intake benchmark: the least a webhook receiver can do and still be durable.
A FastAPI endpoint that parses the body as JSON and inserts one row per alert into SQLite (WAL,
synchronous=NORMAL) through aiosqlite before answering 202. Run: python bare_webhook.py PORT DBPATH

Copied as it is (only formatted) from the shared peer, so that bench/webhook_load.py measures the
service against the same peer in the same run without reading anything outside the repository."""

import sys
from contextlib import asynccontextmanager

import aiosqlite
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

db: aiosqlite.Connection


@asynccontextmanager
async def lifespan(_: FastAPI):
    global db
    db = await aiosqlite.connect(sys.argv[2])
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute("PRAGMA synchronous=NORMAL")
    await db.execute(
        "CREATE TABLE IF NOT EXISTS alerts (fp TEXT, starts TEXT, body TEXT, UNIQUE(fp, starts))"
    )
    await db.commit()
    yield
    await db.close()


app = FastAPI(lifespan=lifespan)


@app.get("/health")
async def health() -> dict:
    return {"ok": True}


@app.post("/webhook/alerts")
async def webhook(request: Request) -> JSONResponse:
    payload = await request.json()
    for a in payload["alerts"]:
        await db.execute(
            "INSERT OR IGNORE INTO alerts VALUES (?, ?, ?)",
            (a["fingerprint"], a["startsAt"], str(a)),
        )
    await db.commit()
    return JSONResponse({"runs": []}, status_code=202)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
