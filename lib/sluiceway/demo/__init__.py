"""The TPC-H demo: business transforms the example pipelines build their outputs with."""
