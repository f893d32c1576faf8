"""Sluiceway: PySpark jobs that move RDS data to partitioned Parquet on S3 and Redshift."""

__version__ = "0.1.0"
