"""IG's Postgres adapter: claim identities, record publish results, append receipts and quarantine rows.

Two short writes per request: `claim` (insert the new identities: one statement; a transaction to
take over or read the others, only when there are any) before publishing, and `commit` (one
transaction: admissions ADMITTED + receipts index + quarantine index) after the receipt batch
object is durable. Every statement works on whole batches (unnest of arrays) so a request of 500
events costs a handful of round trips. The arrays go in binary (%b): psycopg's text form escapes
every element with a regular expression, which was the largest part of the commit's CPU. The
connections and their errors come from runtime/db/postgres.py (Database, open_session):
unreachable is DatabaseUnavailable (-> 503).

Claims are owned. Each IG process has an owner key and holds a session advisory lock on it for its
whole life (`ClaimOwner`). A claim row carries the key of the process whose request works on it;
another process may take it over only when nobody holds (claim_owner NULL) or when the owner's lock
can be taken, i.e. the owner process is gone. Every later write (release, mark_published, commit)
is conditional on still owning the row, and a lost claim fails the commit (ClaimLost), so two
processes never both publish-and-admit one identity. Postgres is the only arbiter.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg

from runtime.contracts.canonical import orjson_writes_as_json
from runtime.db.postgres import Database, open_session, translated
from runtime.errors import DatabaseUnavailable, PlatformError
from runtime.ig.domain import Admission, Identity


class ClaimLost(DatabaseUnavailable):
    """An identity this request claimed was taken over (its owner looked dead): nothing of the request is admitted."""

    code = "IG_CLAIM_LOST"
    next_step = "retry the same events; the identity is finished by the request that took it over"


@dataclass(frozen=True)
class ClaimResult:
    """Per identity: inserted by this call (claimed), taken over by it (taken), and the admission in place."""

    claimed: bool
    existing: Admission | None
    taken: bool = False

    @property
    def held(self) -> bool:
        """This request owns the identity now and may act on it."""
        return self.claimed or self.taken


class ClaimOwner:
    """The owner key of this IG process, alive as long as a session advisory lock on it is held.

    The lock lives on its own connection (not a pool one). When the connection is lost (process
    killed, database restarted) the lock goes with it; `ensure` takes it again before the next
    claim, so claims are never inserted by an owner that looks dead.
    """

    def __init__(self, dsn: str):
        self.dsn = dsn
        self.key = secrets.randbelow(2**62 - 2**40) + 2**40  # never the migrator's small lock id
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()

    def ensure(self) -> int:
        """The owner key, after making sure its lock is held (DatabaseUnavailable when it cannot be)."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute("SELECT 1")
                    return self.key
                except psycopg.Error:
                    self._drop()
            conn = open_session(self.dsn, what="IG claim owner lock")
            try:
                with translated("IG claim owner lock not taken"):
                    conn.execute("SET lock_timeout = '5s'")
                    conn.execute("SELECT pg_advisory_lock(%s)", (self.key,))
            except PlatformError:
                conn.close()
                raise
            self._conn = conn
            return self.key

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Let go of the lock (the process stops serving)."""
        with self._lock:
            self._drop()


@dataclass(frozen=True)
class ReceiptRow:
    """One row of the append-only receipts index."""

    receipt: dict[str, Any]
    batch_key: str
    batch_index: int


@dataclass(frozen=True)
class QuarantineRow:
    """One row of the append-only quarantine index."""

    receipt_id: str
    platform_run_id: str
    event_class: str | None
    event_id: str | None
    reason: str
    object_key: str
    object_index: int


def _j(value: Any) -> str:
    """`json.dumps(value, separators=(",", ":"))` (ASCII, \\u escapes), byte for byte: orjson's output
    when it is plain ASCII without DEL and orjson writes it as json does (runtime.contracts.canonical)."""
    if orjson_writes_as_json(value):
        try:
            text = orjson.dumps(value)
        except TypeError:
            text = None
        if text is not None and text.isascii() and b"\x7f" not in text:
            return text.decode("ascii")
    return json.dumps(value, separators=(",", ":"))


class AdmissionStore:
    """The admission state and the receipts/quarantine indexes in Postgres."""

    def __init__(self, dsn: str, *, max_size: int = 4):
        self.owner = ClaimOwner(dsn)
        self._db = Database(dsn, name="IG admission store", max_size=max_size)

    def open(self) -> None:
        """Open the pool (lazily connecting)."""
        self._db.open()

    def close(self) -> None:
        """Close the pool and let go of the claim owner lock."""
        self._db.close()
        self.owner.close()

    def _conn(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        # An autocommit connection (the caller's transaction's, inside one); driver errors leave
        # as project errors (runtime/db/postgres.py).
        return self._db.connection()

    def ping(self) -> None:
        """Raise DatabaseUnavailable unless Postgres answers."""
        self._db.ping()

    def claim(self, identities: list[Identity], hashes: list[str],
              event_times: list[int | None] | None = None) -> dict[Identity, ClaimResult]:
        """Insert PENDING rows owned by this process for new identities (with their event time in
        epoch microseconds, which DF's completeness cut reads), take over unfinished ones nobody
        alive works on (same payload hash only), and return what each identity is now."""
        if not identities:
            return {}
        me = self.owner.ensure()
        runs, classes, ids = (list(x) for x in zip(*identities, strict=True))
        times = list(event_times) if event_times is not None else [None] * len(identities)
        with self._conn() as conn:
            # The INSERT is a statement of its own (one round trip): new identities need nothing else,
            # and the others are taken over in a transaction of their own below.
            inserted = conn.execute(
                "INSERT INTO ig_admissions (platform_run_id, event_class, event_id, payload_hash, state, claim_owner,"
                " event_ts_micros) SELECT r, c, i, h, 'PENDING', %s, ts"
                " FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::bigint[]) AS t(r, c, i, h, ts)"
                " ON CONFLICT DO NOTHING RETURNING platform_run_id, event_class, event_id",
                (me, runs, classes, ids, hashes, times),
            ).fetchall()
            claimed = {(r[0], r[1], r[2]) for r in inserted}
            others = [(ident, h) for ident, h in zip(identities, hashes, strict=True) if ident not in claimed]
            found: dict[Identity, Admission] = {}
            taken: set[Identity] = set()
            if others:
                with conn.transaction():
                    taken, found = self._take_over(conn, me, others)
        return {ident: ClaimResult(ident in claimed, found.get(ident), ident in taken) for ident in identities}

    @staticmethod
    def _take_over(conn: psycopg.Connection[Any], me: int,
                   others: list[tuple[Identity, str]]) -> tuple[set[Identity], dict[Identity, Admission]]:
        """Take over the unfinished identities of `others` nobody alive works on; what each one is now."""
        o_runs, o_classes, o_ids = (list(x) for x in zip(*(o[0] for o in others), strict=True))
        o_hashes = [o[1] for o in others]
        # Owner NULL: nobody works on it. Owner me: this process's in-flight set already made this
        # request the only one here. Another owner: only when its lock can be taken (it is dead).
        taken = {(r[0], r[1], r[2]) for r in conn.execute(
            "UPDATE ig_admissions a SET claim_owner = %s, updated_at = now()"
            " FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[]) AS t(r, c, i, h)"
            " WHERE a.platform_run_id = t.r AND a.event_class = t.c AND a.event_id = t.i"
            " AND a.state <> 'ADMITTED' AND a.payload_hash = t.h"
            " AND (a.claim_owner IS NULL OR a.claim_owner = %s OR pg_try_advisory_xact_lock(a.claim_owner))"
            " RETURNING a.platform_run_id, a.event_class, a.event_id",
            (me, o_runs, o_classes, o_ids, o_hashes, me),
        ).fetchall()}
        rows = conn.execute(
            "SELECT a.platform_run_id, a.event_class, a.event_id, a.payload_hash, a.state, a.receipt_id, a.eb_ref"
            " FROM ig_admissions a JOIN unnest(%b::text[], %b::text[], %b::text[]) AS t(r, c, i)"
            " ON a.platform_run_id = t.r AND a.event_class = t.c AND a.event_id = t.i",
            (o_runs, o_classes, o_ids),
        ).fetchall()
        found = {(r[0], r[1], r[2]): Admission(r[3], r[4], r[5], r[6]) for r in rows}
        return taken, found

    def release(self, fresh: list[Identity], held: list[Identity]) -> None:
        """Let go of this request's claims: `fresh` ones (inserted now, nothing landed) are deleted, the
        other `held` ones stay as they are but owned by nobody, so any process can finish them."""
        with self._conn() as conn, conn.transaction():
            for sql, idents in (
                ("DELETE FROM ig_admissions a USING unnest(%b::text[], %b::text[], %b::text[]) AS t(r, c, i)"
                 " WHERE a.platform_run_id = t.r AND a.event_class = t.c AND a.event_id = t.i AND a.state = 'PENDING'"
                 " AND a.receipt_id IS NULL AND a.claim_owner = %s", fresh),
                ("UPDATE ig_admissions a SET claim_owner = NULL, updated_at = now()"
                 " FROM unnest(%b::text[], %b::text[], %b::text[]) AS t(r, c, i)"
                 " WHERE a.platform_run_id = t.r AND a.event_class = t.c AND a.event_id = t.i AND a.claim_owner = %s",
                 held),
            ):
                if idents:
                    runs, classes, ids = (list(x) for x in zip(*idents, strict=True))
                    conn.execute(sql, (runs, classes, ids, self.owner.key))

    def mark_published(self, refs: dict[Identity, dict[str, Any]]) -> None:
        """Record eb_refs of records that landed when their receipts could not be written (claims let go)."""
        if not refs:
            return
        idents = list(refs)
        runs, classes, ids = (list(x) for x in zip(*idents, strict=True))
        with self._conn() as conn, conn.transaction():
            conn.execute(
                "UPDATE ig_admissions a SET state = 'PUBLISHED', eb_ref = t.e::jsonb, updated_at = now(),"
                " publish_attempts = a.publish_attempts + 1, claim_owner = NULL"
                " FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[]) AS t(r, c, i, e)"
                " WHERE a.platform_run_id = t.r AND a.event_class = t.c AND a.event_id = t.i AND a.state <> 'ADMITTED'"
                " AND a.claim_owner = %s",
                (runs, classes, ids, [_j(refs[k]) for k in idents], self.owner.key),
            )

    def commit(self, admitted: dict[Identity, tuple[str, dict[str, Any]]], receipts: list[ReceiptRow],
               quarantine: list[QuarantineRow], ambiguous: dict[Identity, str] | None = None,
               *, before_commit: Callable[[], object] | None = None) -> None:
        """One transaction: identities ADMITTED with receipt + eb_ref, receipts and quarantine rows appended;
        PENDING identities remember the PUBLISH_AMBIGUOUS receipt of their attempt. Every identity must
        still be owned by this process, else ClaimLost and nothing is written. `before_commit` runs after the
        writes and before COMMIT (the caller waits there for the receipts object); if it raises, nothing
        is committed."""
        with self._conn() as conn, conn.transaction():
            if ambiguous:
                a_idents = list(ambiguous)
                a_runs, a_classes, a_ids = (list(x) for x in zip(*a_idents, strict=True))
                conn.execute(
                    "UPDATE ig_admissions a SET receipt_id = t.rid, updated_at = now(), publish_attempts = a.publish_attempts + 1,"
                    " claim_owner = NULL"
                    " FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[]) AS t(r, c, i, rid)"
                    " WHERE a.platform_run_id = t.r AND a.event_class = t.c AND a.event_id = t.i AND a.state = 'PENDING'"
                    " AND a.claim_owner = %s",
                    (a_runs, a_classes, a_ids, [ambiguous[k] for k in a_idents], self.owner.key),
                )
            eb_texts: dict[int, str] = {}  # one JSON text per eb_ref object (the admission and its receipt share it)

            def eb_text(eb: dict[str, Any]) -> str:
                text = eb_texts.get(id(eb))
                if text is None:
                    text = eb_texts[id(eb)] = _j(eb)
                return text
            if admitted:
                idents = list(admitted)
                runs, classes, ids = (list(x) for x in zip(*idents, strict=True))
                done = conn.execute(
                    "UPDATE ig_admissions a SET state = 'ADMITTED', receipt_id = t.rid, eb_ref = t.e::jsonb,"
                    " updated_at = now(), publish_attempts = a.publish_attempts + 1, claim_owner = NULL"
                    " FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[]) AS t(r, c, i, rid, e)"
                    " WHERE a.platform_run_id = t.r AND a.event_class = t.c AND a.event_id = t.i"
                    " AND a.state <> 'ADMITTED' AND a.claim_owner = %s",
                    (runs, classes, ids, [admitted[k][0] for k in idents],
                     [eb_text(admitted[k][1]) for k in idents], self.owner.key),
                ).rowcount
                if done != len(idents):
                    raise ClaimLost(f"{len(idents) - done} of {len(idents)} identities were taken over by another IG"
                                    " process while this request published them")
            if receipts:
                # COPY: several times cheaper than a multi-array INSERT for a batch of receipts.
                with conn.cursor().copy(
                    "COPY ig_receipts (receipt_id, platform_run_id, event_class, event_id, outcome, error_code,"
                    " payload_hash, eb_ref, original_receipt_id, batch_key, batch_index, receipt) FROM STDIN"
                ) as copy:
                    for row in receipts:
                        r = row.receipt
                        eb = r.get("eb_ref")
                        copy.write_row((r["receipt_id"], r["platform_run_id"], r.get("event_class"), r.get("event_id"),
                                        r["outcome"], (r.get("error") or {}).get("code"), r.get("payload_hash"),
                                        None if eb is None else eb_text(eb), r.get("original_receipt_id"), row.batch_key,
                                        row.batch_index, _j(r)))
            if quarantine:
                conn.execute(
                    "INSERT INTO ig_quarantine (receipt_id, platform_run_id, event_class, event_id, reason, object_key,"
                    " object_index) SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[],"
                    " %b::text[], %b::int[])",
                    ([q.receipt_id for q in quarantine], [q.platform_run_id for q in quarantine],
                     [q.event_class for q in quarantine], [q.event_id for q in quarantine],
                     [q.reason for q in quarantine], [q.object_key for q in quarantine],
                     [q.object_index for q in quarantine]),
                )
            if before_commit is not None:
                before_commit()

    def receipts_by_id(self, receipt_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The stored receipts of `receipt_ids` (the original receipt a DUPLICATE returns)."""
        if not receipt_ids:
            return {}
        with self._conn() as conn:
            rows = conn.execute("SELECT receipt_id, receipt FROM ig_receipts WHERE receipt_id = ANY(%s)",
                                (receipt_ids,)).fetchall()
        return {r[0]: r[1] for r in rows}

    # --- read side for summaries -------------------------------------------------------------

    def outcome_counts(self, platform_run_id: str) -> tuple[dict[str, int], dict[str, int], int]:
        """(counts by outcome, counts by event class, total attempts) of one run's receipts."""
        with self._conn() as conn:
            by_outcome = dict(conn.execute(
                "SELECT outcome, count(*) FROM ig_receipts WHERE platform_run_id = %s GROUP BY outcome",
                (platform_run_id,)).fetchall())
            by_class = dict(conn.execute(
                "SELECT coalesce(event_class, '(invalid)'), count(*) FROM ig_receipts WHERE platform_run_id = %s"
                " GROUP BY 1", (platform_run_id,)).fetchall())
        return by_outcome, by_class, sum(by_outcome.values())

    def unresolved_ambiguous(self, platform_run_id: str) -> int:
        """PUBLISH_AMBIGUOUS identities with no ADMIT receipt since: the P7 stop-the-line count."""
        with self._conn() as conn:
            row = conn.execute(
                "SELECT count(DISTINCT (a.event_class, a.event_id)) FROM ig_receipts a WHERE a.platform_run_id = %s"
                " AND a.outcome = 'PUBLISH_AMBIGUOUS' AND NOT EXISTS (SELECT 1 FROM ig_receipts b"
                " WHERE b.platform_run_id = a.platform_run_id AND b.event_class = a.event_class"
                " AND b.event_id = a.event_id AND b.outcome = 'ADMIT')",
                (platform_run_id,)).fetchone()
        return int(row[0]) if row else 0

    def quarantine_counts(self, platform_run_id: str) -> tuple[dict[str, int], list[str]]:
        """(quarantined events by reason, the quarantine objects) of one run."""
        with self._conn() as conn:
            by_reason = dict(conn.execute(
                "SELECT reason, count(*) FROM ig_quarantine WHERE platform_run_id = %s GROUP BY reason",
                (platform_run_id,)).fetchall())
            objects = [r[0] for r in conn.execute(
                "SELECT DISTINCT object_key FROM ig_quarantine WHERE platform_run_id = %s ORDER BY 1",
                (platform_run_id,)).fetchall()]
        return by_reason, objects


def run_last_offsets(conn: Any, platform_run_id: str, topics: Iterable[str]) -> dict[tuple[str, str], int]:
    """Per partition of `topics`, the offset of the last record of the run IG admitted there.

    One statement for all topics: each topic's partitions are walked with index probes (a loose
    scan of migration 0610's index on the admissions' eb_ref) and each one's maximum offset read
    from the same index: a few probes per partition, whatever the size of the run (a GROUP BY over
    the run's admissions took ~0.3 s at 100k admissions, per batch)."""
    names = sorted(set(topics))
    if not names:
        return {}
    rows = conn.execute(f"SELECT topic, part, last FROM ({RUN_LAST_OFFSETS_SQL}) AS r", {"run": platform_run_id, "ts": names}).fetchall()
    return {(str(r[0]), str(r[1])): int(r[2]) for r in rows if r[2] is not None}


#: Per partition of the topics %(ts)s: (topic, part, last offset of the run %(run)s IG admitted there).
RUN_LAST_OFFSETS_SQL = (
    "WITH RECURSIVE parts(topic, part) AS ("
    " SELECT t, (SELECT min(eb_ref->>'partition') FROM ig_admissions WHERE platform_run_id = %(run)s"
    " AND eb_ref->>'topic' = t) FROM unnest(%(ts)s::text[]) AS t"
    " UNION ALL SELECT parts.topic, (SELECT min(eb_ref->>'partition') FROM ig_admissions WHERE platform_run_id = %(run)s"
    " AND eb_ref->>'topic' = parts.topic AND eb_ref->>'partition' > parts.part) FROM parts WHERE parts.part IS NOT NULL)"
    " SELECT topic, part, (SELECT max((eb_ref->>'offset')::numeric) FROM ig_admissions WHERE platform_run_id = %(run)s"
    " AND eb_ref->>'topic' = parts.topic AND eb_ref->>'partition' = parts.part) AS last FROM parts WHERE part IS NOT NULL")
