"""The daemon signs checkpoints only with the log's own key. Started beside a key file that does
not belong to the log (a backup restored next to a newer key, a key copied from elsewhere), it
signs nothing and says why, rather than sign with a key no rotation ever announced."""

from conftest import ok, wait_until

def test_a_key_file_that_is_not_the_logs_signs_no_checkpoint(start_daemon, tmp_path):
    key_file = tmp_path / "guard.key"
    d = start_daemon(extra={"audit": {"signing_key_file": str(key_file), "checkpoint_every": 3,
                                      "checkpoint_interval": "1s"}})
    erin, bot = d.client("erin"), d.client("deploy-bot")
    for i in range(4):
        bot.submit(intent=f"before {i}")

    def signed():
        r = erin.get("/v1/audit/checkpoint")
        return r.json() if r.status_code == 200 else None

    first = wait_until(signed, 20, 0.2, "a first checkpoint")
    own_key = first["key_id"]
    d.stop()
    key_file.unlink()  # signoffd makes a new one at start: not the log's key
    d.start()
    assert ok(erin.get("/v1/audit/pubkey"))["key_id"] != own_key
    for i in range(6):
        bot.submit(intent=f"after {i}")
    wait_until(lambda: "signs no checkpoint" in d.log_text(), 20, 0.2,
               "the daemon to say why it signs nothing")
    d.stop()  # a clean stop signs what is unsigned: not with this key
    d.start()
    latest = ok(erin.get("/v1/audit/checkpoint"))
    assert latest["key_id"] == own_key, f"signed with a key the log never named: {latest}"
    assert not d.sanitizer_reports()
