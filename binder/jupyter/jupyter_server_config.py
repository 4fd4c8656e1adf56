"""Kernel messages reach the page without waiting for Nagle's algorithm (Binder, `make lab`).

Tornado leaves Nagle's algorithm on for a websocket unless its handler calls
``set_nodelay(True)``, and Jupyter Server's kernel websocket does not. A click on an explorer
makes the kernel send several small messages in a row (busy, the widget's echo, the new table
and graph, idle); with Nagle on, a message that follows one not yet acknowledged waits for the
browser's delayed ACK, 40 ms on Linux. This connection class turns Nagle off for each kernel
websocket. `make bench` measures the effect (section "Browser latency", stage "transit").
If Jupyter Server moves the class, the server keeps its default and starts as before.
"""

c = get_config()  # noqa: F821 (traitlets provides get_config in config files)

try:
    from jupyter_server.services.kernels.connection.channels import (
        ZMQChannelsWebsocketConnection,
    )
except ImportError:
    pass
else:
    class NoDelayChannels(ZMQChannelsWebsocketConnection):
        """Jupyter Server's kernel websocket connection, with TCP_NODELAY on its socket."""

        def connect(self):
            self.websocket_handler.set_nodelay(True)
            return super().connect()

    c.ServerApp.kernel_websocket_connection_class = NoDelayChannels
