"""The REST API of the workflows app: views, input parsing, the error shape, health and request metrics."""
