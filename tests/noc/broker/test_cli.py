"""``allo noc publish`` and ``allo noc consume``: errors an operator can act on."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from allo.cli import noc
from allo.testing.redis import REDIS_MARKS, RedisServer, free_port

pytestmark = REDIS_MARKS

app = typer.Typer()
app.add_typer(noc.app, name="noc")
runner = CliRunner()


def write_alarms(path: Path) -> Path:
    rows = ["alarm_id,device_id,start_timestamp,end_timestamp", "0,1,10,12", "1,2,15,15"]
    rows += ["1,2,oops,3", "0,9,20,20"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_unreachable_redis_names_the_url_without_its_password(tmp_path: Path) -> None:
    url = f"redis://ops:hunter2@127.0.0.1:{free_port()}/0"
    alarms = write_alarms(tmp_path / "Alarm.csv")
    for args in (
        ["noc", "publish", str(alarms), "--redis", url, "--partitions", "2"],
        ["noc", "consume", "--partition", "0", "--partitions", "2", "--redis", url],
    ):
        result = runner.invoke(app, args, env={"ALLO_DATA_DIR": str(tmp_path / "data")})
        assert result.exit_code == 1, result.output
        assert "cannot reach Redis at redis://ops:***@127.0.0.1" in result.output
        assert "hunter2" not in result.output


def test_a_partition_outside_the_count_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["noc", "consume", "--partition", "2", "--partitions", "2", "--redis", "redis://x"],
        env={"ALLO_DATA_DIR": str(tmp_path / "data")},
    )
    assert result.exit_code == 2 and "not one of 0..1" in result.output


def test_publish_reports_routing_unknown_devices_and_bad_rows(
    redis: RedisServer, tmp_path: Path
) -> None:
    alarms = write_alarms(tmp_path / "Alarm.csv")
    topology = tmp_path / "topology.csv"
    topology.write_text("source,target\n1,2\n", encoding="utf-8")
    args = ["noc", "publish", str(alarms), "--redis", redis.url, "--topology", str(topology)]
    result = runner.invoke(app, [*args, "--partitions", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["published"] == 4  # the bad row travels as a stand-in, counted
    assert summary["input_problems"]["counts"] == {"malformed": 1}
    assert summary["unknown_devices"] == 2  # device 9 and the stand-in's "unknown"
    assert summary["partition_quality"]["cut_edges"] == 0
    assert summary["id_prefix"].startswith("Alarm.")
    again = runner.invoke(app, [*args, "--partitions", "3"])
    assert again.exit_code == 2 and "published for 2 partition" in again.output


def test_publish_can_balance_regions_by_alarm_history(redis: RedisServer, tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    busy = ["alarm_id,device_id,start_timestamp,end_timestamp"]
    busy += [f"0,{1 + i % 2},{i},{i}" for i in range(40)]  # devices 1 and 2 are busy
    history.write_text("\n".join(busy) + "\n", encoding="utf-8")
    topology = tmp_path / "topology.csv"
    topology.write_text("source,target\n1,2\n3,4\n5,6\n7,8\n", encoding="utf-8")
    common = ["noc", "publish", str(history), "--redis", redis.url, "--partitions", "2"]
    common += ["--topology", str(topology), "--json"]
    plain = json.loads(runner.invoke(app, [*common, "--key-prefix", "a"]).output)
    result = runner.invoke(app, [*common, "--key-prefix", "b", "--balance-by", str(history)])
    assert result.exit_code == 0, result.output
    weighted = json.loads(result.output)
    assert sorted(plain["per_partition"]) == [0, 40]  # by device count: 1-2 with 3-4
    assert weighted["published"] == 40 and weighted["layout"] != plain["layout"]
    # balance by alarms splits the busy pair: one link cut, the load shared out
    assert weighted["per_partition"] == [20, 20]
    assert weighted["partition_quality"]["cut_edges"] == 1
