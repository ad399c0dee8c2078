"""Runtime: how a run meets its machine.

Contract: `signals` turns SIGTERM/SIGINT into a clean stop, `sharding` places
arrays on the devices of one or several processes, `seeds` derives every PRNG
key of a run from its seed. No research code.
"""
