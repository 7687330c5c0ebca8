"""What starts incidents besides the webhook: the Docker engine's own events (sources/watcher.py).

Nothing here imports the graph, the nodes or the server: a source turns what it sees into
Alertmanager-shaped alerts and hands them to the same intake as the webhook.
"""
