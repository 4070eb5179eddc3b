"""DLA's adapters: hash-chained batch objects in the object store, their append-only Postgres index,
lineage from that index, one decision's chain, and the verification of the stored chain.

The batch object is written (create-only, its digest in its key, never overwritten) before its
index rows, inside the worker's transaction: an index row never names a missing object, and an
object of a transaction that rolled back is an unindexed orphan that no reader follows. The
highest `dla_audit_batches` row is the chain head (digest) and the row count the batch count, so
`verify_stored_chain` also catches an edit to, or the removal of, the last batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from runtime.contracts.canonical import canonical_digest, sha256_hex
from runtime.decision.dla.domain import GENESIS, AuditLog, AuditRecordConflict, ChainVerdict, read_batch, verify_read_chain
from runtime.errors import ObjectMissing, PermanentError, WriteConflict
from runtime.store.port import ObjectStore


class AuditObjectCorrupt(PermanentError):
    """An audit batch object already exists with other bytes than the batch being written."""

    code = "AUDIT_OBJECT_CORRUPT"
    next_step = "an audit object was changed after it was written: run the chain verification and investigate"


@dataclass(frozen=True)
class ChainHead:
    """The index's view of the chain: the next sequence number and the head digest."""

    next_seq: int
    head_sha256: str


@dataclass(frozen=True)
class BatchRow:
    """One batch object as the index knows it."""

    batch_seq: int
    previous_sha256: str
    sha256: str
    record_count: int
    object_key: str


def lock_chain(conn: Any, platform_run_id: str) -> ChainHead:
    """Take the run's chain lock for the transaction (one writer at a time) and read the head."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ("dla_audit_chain:" + platform_run_id,))
    row = conn.execute("SELECT batch_seq, sha256 FROM dla_audit_batches WHERE platform_run_id = %s"
                       " ORDER BY batch_seq DESC LIMIT 1", (platform_run_id,)).fetchone()
    return ChainHead(0, GENESIS) if row is None else ChainHead(int(row[0]) + 1, str(row[1]))


def held_records(conn: Any, platform_run_id: str, audit_ids: Sequence[str]) -> dict[str, str]:
    """audit_id -> record_sha256 of those of `audit_ids` the index already holds."""
    rows = conn.execute("SELECT audit_id, record_sha256 FROM dla_audit_records WHERE platform_run_id = %s"
                        " AND audit_id = ANY(%s::text[])", (platform_run_id, list(audit_ids))).fetchall()
    return {str(a): str(s) for a, s in rows}


def batch_key(prefix: str, seq: int, sha256: str) -> str:
    """`<run audit prefix>batch=<seq, 12 digits>-<sha256[:16]>.json`: sorts in chain order, never reused."""
    return f"{prefix}batch={seq:012d}-{sha256[:16]}.json"


def put_batch(store: ObjectStore, key: str, data: bytes) -> None:
    """Write a batch object once; the same bytes already there are fine (a redone transaction)."""
    try:
        store.put(key, data, create_only=True)
    except WriteConflict:
        if store.get(key) != data:
            raise AuditObjectCorrupt(f"{store.uri(key)} exists with other bytes than the batch it names") from None


def index_batch(conn: Any, platform_run_id: str, seq: int, previous_sha256: str, sha256: str, key: str,
                entries: Sequence[Mapping[str, Any]], *, contents: Sequence[bytes] | None = None) -> None:
    """Append the batch row and one row per record (entries: audit record + kind's parent, eb_ref, record;
    `contents`: each record's canonical bytes, when the caller has them, written as they are)."""
    conn.execute("INSERT INTO dla_audit_batches (platform_run_id, batch_seq, previous_sha256, sha256, record_count, object_key)"
                 " VALUES (%s, %s, %s, %s, %s, %s)", (platform_run_id, seq, previous_sha256, sha256, len(entries), key))
    # COPY: one stream for the batch's rows instead of an INSERT per row (dla's own CPU at 100k: 51.8
    # -> 47.7 s; the server's time per row did not fall, docs/performance.md); a row already there
    # fails the batch as the INSERT did.
    with conn.cursor() as cur, cur.copy("COPY dla_audit_records (platform_run_id, audit_id, kind, record_id, parent_id,"
                                        " decision_id, event_id, record_sha256, batch_seq, batch_position, eb_ref, record)"
                                        " FROM STDIN") as copy:
        for position, e in enumerate(entries):
            record = Jsonb(e["record"]) if contents is None else contents[position].decode("utf-8")
            copy.write_row((platform_run_id, e["audit_id"], e["kind"], e["record_id"], e["parent_id"], e["decision_id"],
                            e["event_id"], e["record_sha256"], seq, position, Jsonb(e["eb_ref"]), record))


def batch_rows(conn: Any, platform_run_id: str) -> list[BatchRow]:
    """The run's batch index in chain order."""
    rows = conn.execute("SELECT batch_seq, previous_sha256, sha256, record_count, object_key FROM dla_audit_batches"
                        " WHERE platform_run_id = %s ORDER BY batch_seq", (platform_run_id,)).fetchall()
    return [BatchRow(int(r[0]), str(r[1]), str(r[2]), int(r[3]), str(r[4])) for r in rows]


def record_counts(conn: Any, platform_run_id: str) -> dict[str, int]:
    """Logged records by kind."""
    rows = conn.execute("SELECT kind, count(*) FROM dla_audit_records WHERE platform_run_id = %s GROUP BY 1",
                        (platform_run_id,)).fetchall()
    return {str(k): int(n) for k, n in rows}


# -- lineage ---------------------------------------------------------------------------------------

_PARENT_BREAKS = """
SELECT c.record_id, c.kind, CASE c.kind WHEN 'outcome' THEN 'INTENT_UNKNOWN' ELSE 'DECISION_UNKNOWN' END
FROM dla_audit_records c
WHERE c.platform_run_id = %(run)s AND c.kind IN ('outcome', 'intent') AND NOT EXISTS (
  SELECT 1 FROM dla_audit_records p WHERE p.platform_run_id = c.platform_run_id AND p.record_id = c.parent_id
   AND p.kind = CASE c.kind WHEN 'outcome' THEN 'intent' ELSE 'decision' END)
"""
#: A decision (row `d`) without its admitted event's id, eb_ref or receipt: a break that never resolves.
_UNRESOLVABLE_DECISION = """(coalesce(d.event_id, '') = ''
  OR jsonb_typeof(d.record -> 'provenance' -> 'eb_ref') IS DISTINCT FROM 'object'
  OR coalesce(d.record -> 'provenance' ->> 'receipt_id', '') = '')"""
_ADMITTED_BREAKS = f"""
SELECT d.record_id, 'decision', 'ADMITTED_EVENT_UNRESOLVED' FROM dla_audit_records d
WHERE d.platform_run_id = %(run)s AND d.kind = 'decision' AND {_UNRESOLVABLE_DECISION}
"""
_CHILD_BREAKS = """
SELECT i.record_id, 'intent', 'OUTCOME_MISSING' FROM dla_audit_records i
WHERE i.platform_run_id = %(run)s AND i.kind = 'intent' AND EXISTS (
  SELECT 1 FROM dla_audit_records d WHERE d.platform_run_id = i.platform_run_id AND d.kind = 'decision'
   AND d.record_id = i.parent_id)
  AND NOT EXISTS (SELECT 1 FROM dla_audit_records o WHERE o.platform_run_id = i.platform_run_id AND o.kind = 'outcome'
   AND o.parent_id = i.record_id)
UNION ALL
SELECT d.record_id, 'decision', 'INTENT_MISSING:' || a.action_type FROM dla_audit_records d
CROSS JOIN LATERAL jsonb_array_elements_text(coalesce(d.record -> 'actions', '[]'::jsonb)) AS a(action_type)
WHERE d.platform_run_id = %(run)s AND d.kind = 'decision' AND NOT EXISTS (
  SELECT 1 FROM dla_audit_records i WHERE i.platform_run_id = d.platform_run_id AND i.kind = 'intent'
   AND i.parent_id = d.record_id AND i.record ->> 'action_type' = a.action_type)
"""


def lineage_breaks(conn: Any, platform_run_id: str, *, final: bool = True) -> list[dict[str, str]]:
    """Every lineage break of the run, as `AuditLog.unresolved` defines them, from the durable index.

    Without `final` (during the run): a child whose parent has not arrived (INTENT_UNKNOWN,
    DECISION_UNKNOWN: pending, resolved when the parent is logged) and a decision without its
    admitted event's eb_ref or receipt (never resolvable). With `final` (closeout) also a decision
    whose intents or an intent whose outcome never arrived.
    """
    sql = _PARENT_BREAKS + " UNION ALL " + _ADMITTED_BREAKS + (" UNION ALL " + _CHILD_BREAKS if final else "")
    rows = conn.execute(sql + " ORDER BY 2, 1, 3", {"run": platform_run_id}).fetchall()
    return [{"record_id": str(r[0]), "kind": str(r[1]), "break": str(r[2])} for r in rows]


def lineage_unresolved_total(conn: Any, platform_run_id: str) -> int:
    """The P9 figure: lineage breaks left at closeout (must be 0)."""
    return len(lineage_breaks(conn, platform_run_id, final=True))


_PARENT_OF = "CASE c.kind WHEN 'outcome' THEN 'intent' ELSE 'decision' END"


@dataclass
class LineageCounter:
    """The run's lineage counts during the run (DLA's health), read from the batches written since
    the last read rather than from the whole index each time.

    Rows of committed batches never change (append-only), so what they contribute is kept: the
    children scan starts at the oldest committed batch with a child whose parent is not in a
    committed batch yet, and unresolvable decisions of committed batches are counted once. The
    batch being written (`current`, not committed yet) is read every time and kept nowhere, so a
    transaction that rolls back leaves no trace. The first read after a start reads everything.
    """

    platform_run_id: str
    children_from: int = 0
    decisions_from: int = 0
    unresolvable_committed: int = 0

    def read(self, conn: Any, current: int) -> tuple[int, int]:
        """(pending, unresolvable) as of the open transaction, `current` being its batch's seq."""
        args = {"run": self.platform_run_id, "children_from": self.children_from, "decisions_from": self.decisions_from,
                "current": current}
        pending, oldest = conn.execute(
            "SELECT count(*) FILTER (WHERE p.batch_seq IS NULL), min(c.batch_seq) FILTER (WHERE c.batch_seq < %(current)s"
            " AND (p.batch_seq IS NULL OR p.batch_seq >= %(current)s)) FROM dla_audit_records c"
            f" LEFT JOIN dla_audit_records p ON p.platform_run_id = c.platform_run_id AND p.kind = {_PARENT_OF}"
            " AND p.record_id = c.parent_id WHERE c.platform_run_id = %(run)s AND c.kind IN ('outcome', 'intent')"
            " AND c.batch_seq >= %(children_from)s", args).fetchone()
        committed, in_current = conn.execute(
            "SELECT count(*) FILTER (WHERE d.batch_seq < %(current)s), count(*) FILTER (WHERE d.batch_seq >= %(current)s)"
            " FROM dla_audit_records d WHERE d.platform_run_id = %(run)s AND d.kind = 'decision'"
            f" AND d.batch_seq >= %(decisions_from)s AND {_UNRESOLVABLE_DECISION}", args).fetchone()
        self.children_from = current if oldest is None else int(oldest)
        self.unresolvable_committed += int(committed)
        self.decisions_from = current
        return int(pending), self.unresolvable_committed + int(in_current)


# -- one decision's chain --------------------------------------------------------------------------

def decision_chain(conn: Any, platform_run_id: str, *, decision_id: str | None = None,
                   event_id: str | None = None) -> dict[str, Any] | None:
    """One decision's whole chain from the index, by decision id or admitted event id: the admitted
    event (eb_ref, receipt), the decision with the reasons that fired and the feature values behind
    them, its intents and outcomes, and where each record sits in the audit chain. None when unknown."""
    row = conn.execute("SELECT record_id FROM dla_audit_records WHERE platform_run_id = %s AND kind = 'decision'"
                       " AND (record_id = %s OR event_id = %s) ORDER BY batch_seq, batch_position LIMIT 1",
                       (platform_run_id, decision_id or "", event_id or "")).fetchone()
    if row is None:
        return None
    did = str(row[0])
    rows = conn.execute(
        "SELECT r.kind, r.record, r.record_id, r.batch_seq, r.batch_position, r.record_sha256, r.eb_ref, b.object_key"
        " FROM dla_audit_records r JOIN dla_audit_batches b USING (platform_run_id, batch_seq)"
        " WHERE r.platform_run_id = %s AND r.decision_id = %s ORDER BY r.batch_seq, r.batch_position",
        (platform_run_id, did)).fetchall()
    log = AuditLog()
    for kind, record, *_ in rows:
        log.append(str(kind), record)
    chain = log.chain(decision_id=did)
    if chain is None:
        return None
    chain["audit"] = [{"kind": str(r[0]), "record_id": str(r[2]), "batch_seq": int(r[3]), "batch_position": int(r[4]),
                       "record_sha256": str(r[5]), "eb_ref": r[6], "object_key": str(r[7])} for r in rows]
    return chain


# -- verification ----------------------------------------------------------------------------------

def verify_stored_chain(conn: Any, store: ObjectStore, platform_run_id: str) -> ChainVerdict:
    """Check the run's stored audit chain against its index; finds an edited, removed or reordered batch.

    Codes: those of `verify_chain` over the objects in index order (with the index's head and batch
    count), plus BATCH_REMOVED for an indexed object that is gone, BATCH_EDITED for an object whose
    bytes no longer hash to its index row, and INDEX_RECORD_MISMATCH for index rows that differ
    from the records their batch object holds (an edited index).
    """
    rows = batch_rows(conn, platform_run_id)
    problems: list[dict[str, Any]] = []

    def stored() -> Iterator[tuple[bytes, Any]]:
        # one batch object in memory at a time: a run's objects together held 6.5 GB at 500k traffic events
        for row in rows:
            try:
                data = store.get(row.object_key)
            except ObjectMissing:
                problems.append({"batch_seq": row.batch_seq, "code": "BATCH_REMOVED", "detail": f"{row.object_key} is gone"})
                continue
            batch = read_batch(data)
            if sha256_hex(data) != row.sha256:
                problems.append({"batch_seq": row.batch_seq, "code": "BATCH_EDITED",
                                 "detail": f"{row.object_key} no longer hashes to its index row"})
            problems.extend(_index_matches(conn, platform_run_id, row, batch))
            yield data, batch

    verdict = verify_read_chain(stored(), head_sha256=rows[-1].sha256 if rows else None, expected_batches=len(rows))
    problems.extend(verdict.problems)
    return ChainVerdict(not problems, len(rows), tuple(problems))


def _index_matches(conn: Any, platform_run_id: str, row: BatchRow, batch: Any) -> list[dict[str, Any]]:
    """INDEX_RECORD_MISMATCH when the batch's index rows are not the records its object holds: other
    audit ids or digests, or a record whose content differs. An object the chain check passes holds
    records that hash to their digests, so an index record equal to its object's record hashes to
    its own. PostgreSQL compares them (`jsonb::text` keeps a number's written scale, so 1 and 1.0
    differ as their canonical bytes do), instead of every index record being fetched, parsed and
    hashed here (most of P9's chain check)."""
    try:
        entries = batch["records"]
        in_object = {str(r["audit_id"]): str(r["record_sha256"]) for r in entries}
        contents = {str(r["audit_id"]): r.get("record") for r in entries}
    except (KeyError, TypeError, AttributeError):
        return []  # verify_read_chain reports the unreadable batch
    try:
        sent = orjson.dumps(contents).decode("utf-8")
        with conn.transaction():  # a savepoint: text jsonb refuses (\u0000) leaves the caller's transaction usable
            compared = conn.execute(
                "SELECT d.audit_id, d.record_sha256, o.r IS NULL OR d.record::text <> o.r::text FROM dla_audit_records d"
                " LEFT JOIN jsonb_each(%s::jsonb) AS o(a, r) ON o.a = d.audit_id"
                " WHERE d.platform_run_id = %s AND d.batch_seq = %s", (sent, platform_run_id, row.batch_seq)).fetchall()
    except (TypeError, psycopg.errors.DataError):  # what orjson or jsonb do not take (integers beyond 64 bits,
        # lone surrogates, \u0000; no record the lane wrote holds them): hash each index record here
        indexed = conn.execute("SELECT audit_id, record_sha256, record FROM dla_audit_records WHERE platform_run_id = %s"
                               " AND batch_seq = %s", (platform_run_id, row.batch_seq)).fetchall()
        compared = [(a, s, canonical_digest(record) != s) for a, s, record in indexed]
    in_index = {str(a): str(s) for a, s, _ in compared}
    differing = sum(1 for _, _, differs in compared if differs)
    if in_index != in_object or differing:
        return [{"batch_seq": row.batch_seq, "code": "INDEX_RECORD_MISMATCH",
                 "detail": f"index rows of batch {row.batch_seq} differ from its object ({len(in_index)} vs {len(in_object)}"
                           f" records, {differing} rows whose content differs from the object's record)"}]
    return []


def conflict(kind: str, record_id: str) -> AuditRecordConflict:
    """The error for a record id logged before with other content."""
    return AuditRecordConflict(f"{kind} {record_id} arrived again with different content; the log keeps the first")
