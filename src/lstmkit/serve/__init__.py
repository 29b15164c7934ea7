"""Serving trained runs: ONNX export (``export``) and the HTTP server (``app``).

Both load finished run directories and never train. Nothing here is imported by
``lstmkit --help``: the server's and the exporter's libraries load on first use.
"""
