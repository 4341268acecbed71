"""The ChatService: the Protocol the runtime calls, the embedded service and the remote adapter."""
