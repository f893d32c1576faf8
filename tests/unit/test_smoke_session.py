def test_session_runs_in_utc_with_dynamic_overwrite(spark):
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.sources.partitionOverwriteMode") == "dynamic"
    assert spark.range(3).count() == 3
