def test_valkey_server_answers_with_password(valkey_server):
    client = valkey_server.settings.client()
    client.set("k", "v")
    assert client.get("k") == b"v"


def test_spark_session_is_local_and_utc(spark):
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.range(5).count() == 5
