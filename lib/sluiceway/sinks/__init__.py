"""Writers: Parquet, and later Redshift and JDBC."""
