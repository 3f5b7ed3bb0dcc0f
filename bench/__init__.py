"""gatewaylens benchmarks: ``python -m bench`` (``make bench``).

Measures, in one run and side by side, the mock (recording on vs off; vs each runnable gateway),
capture (gateways concurrently vs one after another; capture's own overhead) and analyze
(exchanges/s and peak memory at 1k, 10k, 100k synthetic exchanges), prints a table of each figure
with its goal, and writes ``output/bench/<UTC timestamp>.json`` (:class:`bench.models.BenchFile`).
"""
