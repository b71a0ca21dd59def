"""Evaluating what each vendor stack reports: the support matrix and snapshot comparison.

:mod:`gpuabst.evaluate.fields` walks the data model into field paths, :mod:`~.observe` replays
fixtures (or reads live backends) one backend at a time, :mod:`~.matrix` builds and
:mod:`~.render` draws the support matrix, and :mod:`~.compare` shows what differs between two
fixtures or ``show --json`` documents.
"""
