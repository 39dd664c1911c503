"""Batches: many videos from one file or sweep (`promptreel batch`), on a backend.

`rows` reads and checks the rows and sweeps them into jobs; `runner` runs the jobs through a
backend (`local`: this process) and keeps the store, the files and batch.json; `sheet` draws
the contact sheet.
"""
