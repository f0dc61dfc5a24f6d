"""Reconcile an ETL flow's run: every record read is in bronze as received, and valid (in silver, or a copy of an
event silver holds), a dead letter (quarantined by an expectation among them) or dropped by an expectation.

    scripts/reconcile.sh --etl [--config conf/local.toml]          # the built-in ETL
    scripts/reconcile.sh --etl --config conf/etl/orders.toml       # an ETL flow of config
"""

from __future__ import annotations

from dataclasses import dataclass

from eventlake.ops.lake import Lake
from eventlake.ops.reconcile import missing_batches
from eventlake.pipeline.etl_by_state import SILVER_BATCHES
from eventlake.pipeline.etl_flow import EtlFlow
from eventlake.pipeline.expectations import EXPECTATION_BATCHES
from eventlake.runtime.config import StorageSettings
from eventlake.runtime.errors import EnvironmentProblem
from eventlake.runtime.job_tables import DEAD_LETTERS, INTAKE_BATCHES, job_table


@dataclass(frozen=True)
class EtlReconciliation:
    """The figures of an ETL flow's tables and the checks between them. ``by_state``: silver was written by the
    state mode's silver query, whose per-batch figures (``<job>_silver_batches``) give valid and invalid.

    Example::

        result = reconcile_etl(settings.storage, etl_flow(settings))
        print(result.table()); result.problems()  # [] when every record is accounted for
    """

    job: str
    read: int
    bronze: int
    valid: int
    invalid: int
    dead_letters: int
    silver: int
    dropped: int = 0
    quarantined: int = 0
    by_state: bool = False
    duplicates_by_state: int | None = None
    batch_problems: tuple[str, ...] = ()

    @property
    def copies(self) -> int:
        """Valid records silver did not take: copies of an event it holds (and, by state, those it dropped)."""
        return self.valid - self.silver

    def problems(self) -> list[str]:
        """What does not add up; empty when the run reconciles."""
        found = list(self.batch_problems)
        if self.bronze != self.read:
            found.append(f"{self.job}'s bronze holds {self.bronze} records, the intake read {self.read}")
        if self.read != self.valid + self.invalid + self.dropped:
            found.append(
                f"records read {self.read} != valid {self.valid} + invalid {self.invalid} + dropped {self.dropped}"
            )
        if self.invalid != self.dead_letters:
            found.append(f"invalid records {self.invalid} != rows in {self.job}_dead_letters {self.dead_letters}")
        if self.copies < 0:
            found.append(f"silver holds {self.silver} rows, more than the {self.valid} valid records read")
        if self.duplicates_by_state is not None and self.copies != self.duplicates_by_state:
            found.append(f"valid {self.valid} != silver rows {self.silver} + duplicates {self.duplicates_by_state}")
        return found

    def table(self) -> str:
        rows = [
            ("Kafka records read", self.read),
            ("  in bronze, as received", self.bronze),
            ("  valid", self.valid),
            ("    in silver", self.silver),
            ("    copies of an event silver holds", self.copies),
            ("  dead letters", self.dead_letters),
            *([("    of them quarantined by expectations", self.quarantined)] if self.quarantined else []),
            *([("  dropped by expectations", self.dropped)] if self.dropped else []),
        ]
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {value:>12}" for label, value in rows)


def reconcile_etl(storage: StorageSettings, flow: EtlFlow) -> EtlReconciliation:
    """Read the flow's tables (delta-rs and DuckDB, no JVM) and gather the figures: records from the intake
    table, every record in bronze, and per batch of the ingest (or raw) query its bronze rows against its intake
    counts; valid and invalid from the intake (merge mode) or the silver query's figures (state mode).

    Example::

        reconcile_etl(settings.storage, etl_flow(settings)).problems()
    """
    job = flow.job
    intake, dead, figures = job_table(job, INTAKE_BATCHES), job_table(job, DEAD_LETTERS), job_table(job, SILVER_BATCHES)
    lake = Lake(storage.tables_root)
    try:
        missing = [name for name in (intake, flow.bronze) if name not in lake.tables]
        if missing:
            raise EnvironmentProblem(
                f"tables {', '.join(missing)} are missing under {storage.tables_root}: run the {job} job first"
            )
        [totals] = lake.records(
            "SELECT coalesce(sum(records), 0) AS records, coalesce(sum(valid), 0) AS valid,"
            f' coalesce(sum(invalid), 0) AS invalid FROM "{intake}"'
        )
        by_state = figures in lake.tables
        duplicates = None
        if by_state:
            [totals_by_state] = lake.records(
                "SELECT coalesce(sum(valid), 0) AS valid, coalesce(sum(invalid), 0) AS invalid,"
                f' coalesce(sum(duplicates), 0) AS duplicates FROM "{figures}"'
            )
            valid, invalid = int(totals_by_state.valid), int(totals_by_state.invalid)
            duplicates = int(totals_by_state.duplicates)
        else:
            valid, invalid = int(totals.valid), int(totals.invalid)
        dropped = quarantined = 0
        if job_table(job, EXPECTATION_BATCHES) in lake.tables:
            [expected] = lake.records(
                "SELECT coalesce(sum(dropped), 0) AS dropped, coalesce(sum(quarantined), 0) AS quarantined"
                f' FROM "{job_table(job, EXPECTATION_BATCHES)}"'
            )
            dropped, quarantined = int(expected.dropped), int(expected.quarantined)
        batches = lake.rows(f'SELECT DISTINCT writer_id, batch_id FROM "{intake}" WHERE writer_id IS NOT NULL')
        # A batch's bronze rows and its intake records, side by side: a batch written to one and not the other,
        # or with other counts, is named.
        unequal = lake.rows(
            f'WITH counted AS (SELECT writer_id, batch_id, sum(records) AS records FROM "{intake}"'
            " WHERE writer_id IS NOT NULL GROUP BY ALL),"
            f' kept AS (SELECT writer_id, batch_id, count(*) AS rows FROM "{flow.bronze}" GROUP BY ALL)'
            " SELECT coalesce(c.writer_id, k.writer_id), coalesce(c.batch_id, k.batch_id), coalesce(c.records, 0),"
            " coalesce(k.rows, 0) FROM counted c FULL JOIN kept k USING (writer_id, batch_id)"
            " WHERE coalesce(c.records, 0) <> coalesce(k.rows, 0) ORDER BY 1, 2"
        )
        batch_problems = missing_batches(batches, intake) + [
            f"batch {batch_id} of {writer_id}: {records} records in {intake}, {rows} rows in {flow.bronze}"
            for writer_id, batch_id, records, rows in unequal
        ]
        return EtlReconciliation(
            job=job, read=int(totals.records), bronze=int(lake.value(f'SELECT count(*) FROM "{flow.bronze}"')),
            valid=valid, invalid=invalid,
            dead_letters=int(lake.value(f'SELECT count(*) FROM "{dead}"')) if dead in lake.tables else 0,
            silver=int(lake.value(f'SELECT count(*) FROM "{flow.silver}"')) if flow.silver in lake.tables else 0,
            dropped=dropped, quarantined=quarantined, by_state=by_state, duplicates_by_state=duplicates,
            batch_problems=tuple(batch_problems),
        )
    finally:
        lake.close()
