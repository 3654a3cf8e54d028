"""`tvmc tune`: MetaSchedule tuning of a compiled model's kernels under an SRAM cap.

One concept per file: tasks.py (which kernels, and each one's workspace budget), space.py (the
Cortex-M search space), postproc.py (the SRAM-cap postprocessor), runners.py (builders and
runners: host, QEMU, RPC), records.py (the records file and applying it), tuner.py (the loop).
"""
