"""Readers: JDBC (planner, watermark), and later Kinesis."""
