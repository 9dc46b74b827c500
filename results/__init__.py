"""The results folder: parquet tables written by the runners, read by the reports.

`results.schema` is the contract between the two: the columns of each table and the reader
that checks them (see README.md beside it). `results.files` writes any file atomically, for
everyone who writes one (the data in `lra`, the runners, the reports).
"""
