"""Graph store: embedded ArcadeDB (Bolt) or Neo4j behind one :class:`GraphStore`.

``GraphStore.connect("embedded")`` starts (or reuses) a local ArcadeDB server in its own
process; ``GraphStore.connect("bolt://...")`` / ``from_env()`` talk to a Neo4j server.
``store_start`` / ``store_stop`` / ``store_status`` back ``i2x store start|stop|status``;
``start_bridge`` / ``stop_bridge`` open the embedded store to Neo4j Browser (``i2x store browser``).
"""

from i2x_plugin.store.bridge import BridgeStatus, StoreBridgeError, bridge_status, start_bridge, stop_bridge
from i2x_plugin.store.graph import GraphStore, StoreTransaction
from i2x_plugin.store.server import (
    ConstraintViolationError,
    EmbeddedServer,
    ReadOnlyQueryError,
    ServerStatus,
    StoreAuthError,
    StoreConnectionError,
    StoreDataDirError,
    StoreError,
    StorePortInUseError,
    StoreQueryError,
    StoreStartError,
    default_data_dir,
    store_start,
    store_status,
    store_stop,
)

__all__ = [
    "BridgeStatus", "ConstraintViolationError", "EmbeddedServer", "GraphStore", "ReadOnlyQueryError",
    "ServerStatus", "StoreAuthError", "StoreBridgeError", "StoreConnectionError", "StoreDataDirError",
    "StoreError", "StorePortInUseError", "StoreQueryError", "StoreStartError",
    "StoreTransaction", "bridge_status", "default_data_dir", "start_bridge", "stop_bridge", "store_start",
    "store_status", "store_stop",
]
