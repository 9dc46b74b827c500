"""The results folder: parquet tables written by the runners, read by the reports.

Its one module, `results.schema`, is the contract between the two: the columns of each
table and the reader that checks them (see README.md beside it).
"""
