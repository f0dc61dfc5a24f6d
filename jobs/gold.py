"""A gold job declared in config: a topic read with a contract, windowed group-bys into a Delta table.

    spark-submit jobs/gold.py --config conf/gold/ysb.toml [--set gold.window.size='30 seconds']
"""

import sys

from eventlake.pipeline.gold import configure_gold, gold_queries
from eventlake.runtime.runner import run_job


def main(argv=None) -> int:
    return run_job("gold", gold_queries, argv, configure=configure_gold)


if __name__ == "__main__":
    sys.exit(main())
