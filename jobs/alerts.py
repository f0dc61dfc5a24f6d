"""Alerts, record at a time: rules from config over each event, matches to a Kafka topic and a Delta table.

    spark-submit --master 'local[6]' jobs/alerts.py [--config conf/local.toml] [--set alerts.trigger='1 second']

Real-Time Mode (``alerts.trigger = "realTime"``) holds a task slot per partition of the topic, plus one for
the copy into Delta: give Spark that many (``local[N]``); an interval trigger runs on any number.
"""

import sys

from eventlake.pipeline.alerts import alerts_queries
from eventlake.runtime.runner import run_job


def main(argv=None) -> int:
    return run_job("alerts", alerts_queries, argv)


if __name__ == "__main__":
    sys.exit(main())
