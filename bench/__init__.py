"""Benchmarks: ``python -m bench`` (``make bench``). They print tables; they are not tests.

Parts: ``udp`` and ``tcp`` (dnsperf against node-dns, NSD and Knot serving the same zone),
``convergence`` (Node Ready flip through the apiserver to the first answer that shows it) and
``scale`` (5,000 nodes: cold start, memory, CPU per node update, QPS, a 500-node area).
Servers under test run on CPU 0, dnsperf and the polling loops on CPU 1.
"""
