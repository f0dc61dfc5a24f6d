"""Streaming ETL: every Kafka record to bronze, clean enriched events to silver, rejects to dead letters.

    spark-submit jobs/etl.py [--config conf/local.toml] [--set etl.trigger='30 seconds']
    spark-submit jobs/etl.py --config conf/etl/orders.toml       # a flow of config: another topic and contract
"""

import sys

from eventlake.pipeline.etl import etl_queries
from eventlake.pipeline.etl_flow import configure_etl
from eventlake.runtime.runner import run_job


def main(argv=None) -> int:
    return run_job("etl", etl_queries, argv, configure=configure_etl)


if __name__ == "__main__":
    sys.exit(main())
