"""The base layer: snapshots and states (`models`), the exception hierarchy (`errors`), and
wording helpers (`text`). Imports nothing else of hermes_jupyter; everything may import it."""
