"""The shardgrad demo: a CNN learns handwritten digits across two local workers.

    python examples/demo.py                  # Ray actors as workers
    python examples/demo.py --backend grpc   # `shardgrad worker` processes (or DEMO_BACKEND=grpc)

It starts a coordinator with its own temporary state, submits the job through the client
SDK, shows a progress bar and the dashboard's address while it trains, prints the test
accuracy, saves the model under demo-output/, and shuts everything down. See
shardgrad/client/demo.py for how.
"""

from __future__ import annotations

import sys

from shardgrad.client.demo import main

if __name__ == "__main__":
    sys.exit(main())
