"""EMR Serverless (STREAMING mode) entrypoint for a Sluiceway stream.

entryPoint jobs/emr_stream.py, entryPointArguments [SPEC, --reader aws-kinesis|python]
"""

from __future__ import annotations

import sys

from sluiceway import streaming
from sluiceway.errors import SluicewayError
from sluiceway.logs import configure_logging
from sluiceway.runtimes import emr_streaming


def main() -> int:
    args = emr_streaming.parse_args(sys.argv[1:])
    configure_logging()
    stop = streaming.StopSignal()
    stop.install()  # EMR cancels with SIGTERM: finish the running batch, then stop
    spark = emr_streaming.session("sluiceway-stream")
    try:
        streaming.run_spec(spark, emr_streaming.load(args), reader=args.reader, stop=stop)
    except SluicewayError as exc:
        print(f"sluiceway: error: {exc}", file=sys.stderr)
        return 1
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
