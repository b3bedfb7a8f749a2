"""The ODM benchmark: native against wrapped mongoengine and Beanie, and hand-written CSFLE.

Follows MongoDB's ODM benchmarking spec (``source/benchmarking/odm-benchmarking.md`` in
mongodb/specifications): each task performs a fixed number of operations per iteration, the
score is the median iteration, the spread is the nearest-rank percentiles, and a task with a
defined size reports MB/s (10^6 bytes of BSON documents processed per second). The
alternatives of one ODM run interleaved (A, B, A, B …, in an order that rotates per iteration),
so what else the machine does hits both; their ratio is the headline.

    python -m stress.odm                # mongomock and FerretDB, the full counts
    python -m stress.odm --quick        # under two minutes
    python -m stress.odm --backend mongomock --quick
"""
