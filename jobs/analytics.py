"""Windowed analytics: events per type and distinct users in event-time windows, from Kafka to Delta.

    spark-submit jobs/analytics.py [--config conf/local.toml] [--set analytics.trigger='30 seconds']
"""

import sys

from eventlake.pipeline.analytics import analytics_queries
from eventlake.runtime.runner import run_job


def main(argv=None) -> int:
    return run_job("analytics", analytics_queries, argv)


if __name__ == "__main__":
    sys.exit(main())
