"""Streaming ETL: every Kafka record to bronze, clean enriched events to silver, rejects to dead_letters.

    spark-submit jobs/etl.py [--config conf/local.toml] [--set etl.trigger='30 seconds']
"""

import sys

from eventlake.pipeline.etl import etl_queries
from eventlake.runtime.runner import run_job


def main(argv=None) -> int:
    return run_job("etl", etl_queries, argv)


if __name__ == "__main__":
    sys.exit(main())
