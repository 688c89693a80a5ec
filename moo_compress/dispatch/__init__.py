"""Distributed latency measurement on Dask: dispatcher, retry policy, clusters."""

from moo_compress.dispatch.cluster import connect, embedded_client
from moo_compress.dispatch.dispatcher import Dispatcher, Outcome, Request
from moo_compress.dispatch.outliers import Expected
from moo_compress.dispatch.retry import RetryPolicy

__all__ = [
    "Dispatcher",
    "Expected",
    "Outcome",
    "Request",
    "RetryPolicy",
    "connect",
    "embedded_client",
]
