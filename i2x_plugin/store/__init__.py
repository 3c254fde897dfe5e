"""Graph store: embedded ArcadeDB (Bolt) or Neo4j behind one :class:`GraphStore`.

``GraphStore.connect("embedded")`` starts (or reuses) a local ArcadeDB server in its own
process; ``GraphStore.connect("bolt://...")`` / ``from_env()`` talk to a Neo4j server.
``store_start`` / ``store_stop`` / ``store_status`` back ``i2x store start|stop|status``.
"""

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
    "ConstraintViolationError", "EmbeddedServer", "GraphStore", "ReadOnlyQueryError",
    "ServerStatus", "StoreAuthError", "StoreConnectionError", "StoreDataDirError",
    "StoreError", "StorePortInUseError", "StoreQueryError", "StoreStartError",
    "StoreTransaction", "default_data_dir", "store_start", "store_status", "store_stop",
]
