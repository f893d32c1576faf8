"""Packaging, Glue job deploys and EMR Serverless submits; the only code that calls AWS
control planes (boto3)."""
