"""The invariant checker: what a live store must never hold, found by bounded scans, repaired where safe.

Kinds of finding (``KINDS``):

- ``no_way_forward``: a pending or running execution with no unprocessed command, no unfired timer, no node
  attempt claimed by a live process and no wait for a signal or approval (invariant 4), for longer than the
  sweeper's grace. Repairable when its journal has running attempts: the sweeper's re-drive (a recovery hint)
  runs them again under the same idempotency key. An execution with nothing to re-run is only reported.
- ``shard_unowned``: a shard with no lease, no owner, or an owner whose liveness expired. The leader moves
  such shards; the checker only reports them.
- ``timer_overdue``: an unfired timer due more than ``invariant-timer-overdue`` ago (the leader fires due
  timers every tick). Repaired by firing due timers (``timers.fire_due``: once per timer, whoever fires it).
- ``journal_gap``: an execution whose events are not exactly seq 1..``last_seq``.
- ``epoch_regression``: an event written at a lower shard epoch than the one before it: a stale owner
  committed after a newer one (invariant 1).
- ``outcome_duplicated``: a node attempt with two outcome events, or two ``WorkflowStarted``: a command's
  effect applied twice (invariant 2).

The three journal kinds are the history rules the fault campaign's checker asserts too
(``engine/history.py``: ``journal_problems``, one implementation), run here on each journal of a page. The
campaign's other rules (every command applied with exactly one event, every execution completed, each node
completed once) hold only for a finished history with no stale results, so they are not findings here: on a
live store an execution is still running, and an attempt's result arriving after its timeout or a cancel is
applied with no event, by design.

Every scan reads in pages through indexes (the primary key, ``execution_shard_active``,
``command_pending``, ``timer_execution``, ``timer_due``, ``event_execution_seq_unique``) and stops at
``limit`` executions, so it is safe on a big store; a truncated scan says where to go on (``next_after``).
Repairs only send hints and fire due timers, which are idempotent: running the checker twice, or beside the
leader, does no harm.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace

from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

from apps.cluster import events, membership
from apps.cluster.models import ShardLease
from apps.workflows.engine import decide as d
from apps.workflows.engine import history
from apps.workflows.engine.state import ExecutionState, ExecutionStatus, NodeStatus
from apps.workflows.metrics import workflow_invariant_repairs_total, workflow_invariant_violations
from apps.workflows.models import Command, Execution, Timer
from apps.workflows.services import claims, dispatch, journal, sweeper, timers
from workflow_engine.tunables import engine_settings

logger = logging.getLogger(__name__)

NO_WAY_FORWARD = "no_way_forward"
SHARD_UNOWNED = "shard_unowned"
TIMER_OVERDUE = "timer_overdue"
JOURNAL_GAP = "journal_gap"
EPOCH_REGRESSION = "epoch_regression"
OUTCOME_DUPLICATED = "outcome_duplicated"
KINDS = (NO_WAY_FORWARD, SHARD_UNOWNED, TIMER_OVERDUE, JOURNAL_GAP, EPOCH_REGRESSION, OUTCOME_DUPLICATED)
_SEVERITY = {SHARD_UNOWNED: "WARNING", TIMER_OVERDUE: "WARNING"}  # the others are ERROR

PAGE = 500  # executions per query
SHARDS_PER_PAGE = 20  # shards per query of active executions
DEFAULT_LIMIT = 100_000  # executions whose journals one scan reads
EVENT_IDS = 20  # ids quoted in a cluster event


@dataclass(frozen=True)
class Finding:
    kind: str
    detail: str
    execution_id: str = ""
    shard_id: int | None = None
    timer_id: int | None = None
    repairable: bool = False
    repaired: bool = False


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    scanned_executions: int = 0
    next_after: str | None = None  # set when the journal scan stopped at ``limit``: where to go on

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(f.kind for f in self.findings)
        return {kind: found[kind] for kind in KINDS}

    @property
    def clean(self) -> bool:
        return not self.findings

    def as_json(self, shown: int | None = None) -> dict[str, object]:
        """The report in the API's camelCase shape, with at most ``shown`` findings (the counts have all)."""
        listed = self.findings if shown is None else self.findings[:shown]
        return {
            "clean": self.clean,
            "scannedExecutions": self.scanned_executions,
            "nextAfter": self.next_after,
            "counts": self.counts,
            "findings": [_finding_json(f) for f in listed],
        }


def _finding_json(finding: Finding) -> dict[str, object]:
    body = asdict(finding)
    return {
        "kind": body["kind"],
        "detail": body["detail"],
        "executionId": body["execution_id"] or None,
        "shardId": body["shard_id"],
        "timerId": body["timer_id"],
        "repairable": body["repairable"],
        "repaired": body["repaired"],
    }


def scan(*, repair: bool = False, limit: int = DEFAULT_LIMIT, after: str = "") -> Report:
    """Look for every kind of finding; with ``repair``, repair the repairable ones. Reports each kind found
    as one ``invariant_violation`` cluster event, and sets ``workflow_invariant_violations{kind}``."""
    report = Report()
    report.findings.extend(stuck_executions())
    report.findings.extend(unowned_shards())
    report.findings.extend(overdue_timers(limit))
    journals, report.scanned_executions, report.next_after = journal_findings(limit=limit, after=after)
    report.findings.extend(journals)
    if repair:
        report.findings = _repair(report.findings)
    _publish(report)
    return report


# --- invariant 4: a way forward ---------------------------------------------------------------------------


def _db_ago(seconds: float) -> RawSQL:
    """PostgreSQL's time minus ``seconds``: timers fire on that clock, whatever this host's says."""
    return RawSQL("now() - make_interval(secs => %s)", [seconds])


def _shard_pages() -> Iterator[list[int]]:
    shards = range(engine_settings.number_of_shards)
    for start in range(0, len(shards), SHARDS_PER_PAGE):
        yield list(shards[start : start + SHARDS_PER_PAGE])


def _without_pending_work(shard_ids: list[int]) -> list[Execution]:
    """Pending or running executions of the shards, idle past the sweeper's grace, with no unprocessed
    command and no unfired timer. Paused ones wait for an operator: that is a way forward.

    The shard and status filter walks ``execution_shard_active``; each ``EXISTS`` probes ``command_pending``
    or ``timer_execution`` once per candidate."""
    pending = Command.objects.filter(execution_id=OuterRef("pk"), processed_at__isnull=True)
    unfired = Timer.objects.filter(execution_id=OuterRef("pk"), fired_at__isnull=True)
    rows = (
        Execution.objects.filter(
            shard_id__in=shard_ids, status__in=[ExecutionStatus.PENDING, ExecutionStatus.RUNNING]
        )
        .alias(idle_since=Coalesce("progressed_at", "created_at"))
        .filter(Q(idle_since__lt=_db_ago(sweeper.node_grace())))
        .filter(~Exists(pending), ~Exists(unfired))
        .only("id", "workflow_id", "shard_id", "status", "last_seq", "running_nodes")
        .order_by("id")
    )
    return list(rows)


def stuck_executions() -> list[Finding]:
    found = []
    for shard_ids in _shard_pages():
        candidates = _without_pending_work(shard_ids)
        claimed = _live_claims(candidates)
        for execution in candidates:
            finding = _way_forward(execution, claimed)
            if finding is not None:
                found.append(finding)
    return found


def _live_claims(executions: Sequence[Execution]) -> set[str]:
    """The executions with a node attempt that a live process claims (it is being run right now)."""
    attempts = [(e.id, node, attempt) for e in executions for node, attempt in e.running_nodes or []]
    return {execution_id for execution_id, _, _ in claims.live(attempts)}


def _way_forward(execution: Execution, claimed: set[str]) -> Finding | None:
    """``None`` when the execution has a way forward; else a finding saying what it lacks."""
    if execution.id in claimed:
        return None
    try:
        state = journal.hydrate(execution)
    except Exception as error:  # a journal too broken to fold is reported, and must not stop the scan
        return _stuck(execution, f"its state cannot be rebuilt from the journal: {error}", repairable=False)
    if _waits_for_someone(state):
        return None
    running = d.running_attempts(state)
    if running:
        attempts = ", ".join(f"{node}#{attempt}" for node, attempt in running)
        return _stuck(execution, f"running attempts {attempts} have no live claim", repairable=True)
    return _stuck(execution, "no command, timer, running attempt or wait", repairable=False)


def _waits_for_someone(state: ExecutionState) -> bool:
    return any(
        n.status == NodeStatus.WAITING and n.waiting_for in ("signal", "approval")
        for n in state.nodes.values()
    )


def _stuck(execution: Execution, why: str, *, repairable: bool) -> Finding:
    return Finding(
        NO_WAY_FORWARD,
        f"{execution.status} execution with no way forward: {why}",
        execution_id=execution.id,
        shard_id=execution.shard_id,
        repairable=repairable,
    )


# --- shards, timers ---------------------------------------------------------------------------------------


def shard_problems(leases: dict[int, str | None], shard_count: int, live: set[str]) -> list[Finding]:
    """Pure: each shard in ``range(shard_count)`` whose lease (``{shard: owner}``) has no live owner."""
    found = []
    for shard_id in range(shard_count):
        owner = leases.get(shard_id)
        if shard_id not in leases:
            why = "has no lease row"
        elif not owner:
            why = "has no owner"
        elif owner not in live:
            why = f"is owned by {owner}, whose liveness expired"
        else:
            continue
        found.append(Finding(SHARD_UNOWNED, f"shard {shard_id} {why}", shard_id=shard_id))
    return found


def unowned_shards() -> list[Finding]:
    leases = dict(ShardLease.objects.values_list("shard_id", "owner"))
    live = set(membership.live_workers())
    return shard_problems(leases, engine_settings.number_of_shards, live)


def overdue_timers(limit: int = DEFAULT_LIMIT) -> list[Finding]:
    """Unfired timers due more than ``invariant-timer-overdue`` ago, oldest first (index ``timer_due``)."""
    bound = engine_settings.invariant_timer_overdue
    rows = (
        Timer.objects.filter(fired_at__isnull=True, fire_at__lt=_db_ago(bound))
        .order_by("fire_at")
        .values_list("id", "execution_id", "kind", "node_id", "fire_at")[:limit]
    )
    return [
        Finding(
            TIMER_OVERDUE,
            f"{kind} timer {node or '(workflow)'} due at {fire_at.isoformat()} not fired after {bound:g}s",
            execution_id=execution_id,
            timer_id=timer_id,
            repairable=True,
        )
        for timer_id, execution_id, kind, node, fire_at in rows
    ]


# --- journals ---------------------------------------------------------------------------------------------

# A page of journals, read in seq order through ``event_execution_seq_unique``: the seq, type and epoch of
# every event, and of an attempt's outcome only its node and attempt (the rules read no other payload).
_JOURNALS_SQL = """
SELECT execution_id, seq, type, epoch,
       CASE WHEN type = ANY(%s) THEN payload->>'nodeId' END,
       CASE WHEN type = ANY(%s) THEN payload->>'attempt' END
FROM workflows_event WHERE execution_id = ANY(%s)
ORDER BY execution_id, seq
"""
_OUTCOMES = sorted(history.OUTCOME_TYPES)
EVENTS_PER_QUERY = 50_000  # events one query reads at most (by the heads' last_seq): bounds the memory
_FINDING_KIND = {  # the history rule's kind -> the finding's (a last_seq that disagrees is a gap too)
    history.SEQ_GAP: JOURNAL_GAP,
    history.LAST_SEQ_MISMATCH: JOURNAL_GAP,
    history.EPOCH_REGRESSION: EPOCH_REGRESSION,
    history.OUTCOME_DUPLICATED: OUTCOME_DUPLICATED,
}
DETAILS = 3  # problems of one kind quoted in one execution's finding


def journal_problems(
    execution_id: str, last_seq: int, events: Sequence[history.JournalEvent]
) -> list[Finding]:
    """The journal rules (``engine/history.py``: ``journal_problems``) as findings, one per kind found."""
    by_kind: dict[str, list[str]] = {}
    for problem in history.journal_problems(last_seq, events):
        by_kind.setdefault(_FINDING_KIND[problem.kind], []).append(problem.detail)
    return [Finding(kind, _details(details), execution_id=execution_id) for kind, details in by_kind.items()]


def _details(details: list[str]) -> str:
    more = f" (and {len(details) - DETAILS} more)" if len(details) > DETAILS else ""
    return "; ".join(details[:DETAILS]) + more


def journal_findings(*, limit: int = DEFAULT_LIMIT, after: str = "") -> tuple[list[Finding], int, str | None]:
    """Journals of up to ``limit`` executions in id order after ``after``; returns the findings, how many
    executions were read, and the id to continue after (``None`` when the scan reached the end)."""
    found: list[Finding] = []
    scanned = 0
    while scanned < limit:
        page = list(
            Execution.objects.filter(id__gt=after)
            .order_by("id")
            .values_list("id", "last_seq")[: min(PAGE, limit - scanned)]
        )
        if not page:
            return found, scanned, None
        for batch in _batches(page):
            found.extend(_batch_problems(batch))
        scanned += len(page)
        after = page[-1][0]
    more = Execution.objects.filter(id__gt=after).exists()
    return found, scanned, after if more else None


def _batches(page: list[tuple[str, int]]) -> Iterator[list[tuple[str, int]]]:
    """The page in runs of executions whose journals add up to at most ``EVENTS_PER_QUERY`` events (a bigger
    journal alone)."""
    batch: list[tuple[str, int]] = []
    events = 0
    for execution_id, last_seq in page:
        if batch and events + last_seq > EVENTS_PER_QUERY:
            yield batch
            batch, events = [], 0
        batch.append((execution_id, last_seq))
        events += last_seq
    if batch:
        yield batch


def _batch_problems(batch: list[tuple[str, int]]) -> list[Finding]:
    journals: dict[str, list[history.JournalEvent]] = {execution_id: [] for execution_id, _ in batch}
    with connection.cursor() as cur:
        cur.execute(_JOURNALS_SQL, [_OUTCOMES, _OUTCOMES, list(journals)])
        for execution_id, seq, type_, epoch, node, attempt in cur.fetchall():
            payload = {"nodeId": node, "attempt": attempt} if type_ in history.OUTCOME_TYPES else {}
            journals[execution_id].append((seq, type_, payload, epoch))
    found = []
    for execution_id, last_seq in batch:
        found.extend(journal_problems(execution_id, last_seq, journals[execution_id]))
    return found


# --- repair and report ------------------------------------------------------------------------------------


def _repair(findings: list[Finding]) -> list[Finding]:
    """Send the sweeper's recovery hint to each repairable stuck execution, and fire the due timers."""
    overdue = [f for f in findings if f.kind == TIMER_OVERDUE]
    if overdue:
        # the overdue timers are the oldest due ones: fire_due takes them first (SKIP LOCKED passes any the
        # leader is firing at this moment, which is as good)
        timers.fire_due(limit=len(overdue))
    repaired = []
    for f in findings:
        if f.repairable and f.kind == NO_WAY_FORWARD and f.shard_id is not None:
            dispatch.apply_hint(f.execution_id, f.shard_id, recover=True)
        repaired.append(replace(f, repaired=f.repairable))
    return repaired


def _publish(report: Report) -> None:
    counts = report.counts
    for kind in KINDS:
        workflow_invariant_violations.labels(kind).set(counts[kind])
    for kind in KINDS:
        of_kind = [f for f in report.findings if f.kind == kind]
        if not of_kind:
            continue
        repaired = sum(f.repaired for f in of_kind)
        if repaired:
            workflow_invariant_repairs_total.labels(kind).inc(repaired)
        events.record(
            "invariant_violation",
            severity=_SEVERITY.get(kind, "ERROR"),
            kind=kind,
            count=len(of_kind),
            repaired=repaired,
            execution_ids=sorted({f.execution_id for f in of_kind if f.execution_id})[:EVENT_IDS],
            shard_ids=sorted({f.shard_id for f in of_kind if f.shard_id is not None})[:EVENT_IDS],
        )
    if report.findings:
        logger.warning("invariant violations found", extra={"counts": counts})
