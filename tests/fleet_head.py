"""A Ray cluster of its own for tests/test_fleet.py's lost-head test, run as a subprocess:
a head that measures nothing and one measuring node. Prints the address, kills the head's GCS
when the file ``argv[1]`` appears, and shuts everything down when stdin closes."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from ray.cluster_utils import Cluster

c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
c.add_node(num_cpus=1, resources={"effplan_node": 1}, object_store_memory=80 * 2**20)
print(c.address, flush=True)
go = Path(sys.argv[1])
closed = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), closed.set()), daemon=True).start()
while not go.exists() and not closed.is_set():
    time.sleep(0.2)
if go.exists():
    c.head_node.kill_gcs_server()
    print("gcs killed", flush=True)
closed.wait(timeout=300)
try:
    c.shutdown()
except Exception:  # noqa: BLE001 - the head is gone already; its raylets go with the process
    pass
