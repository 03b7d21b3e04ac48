"""The run store keeps every complete record and survives a torn last line."""
import json

from lema_plugin.store import RunStore, write_jsonl_atomic


def test_append_dedupes_and_reloads(tmp_path):
    path = tmp_path / "out.jsonl"
    with RunStore(path) as store:
        assert store.append({"id": "a", "v": 1})
        assert not store.append({"id": "a", "v": 2})
        assert store.append({"id": "b", "v": 3})
    store = RunStore(path)
    assert store.ids() == {"a", "b"} and store.get("a")["v"] == 1
    store.close()
    assert len(path.read_text().splitlines()) == 2


def test_torn_tail_is_dropped_and_appends_stay_clean(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text(json.dumps({"id": "a"}) + "\n" + '{"id": "b", "te')
    with RunStore(path) as store:
        assert store.ids() == {"a"}
        store.append({"id": "c"})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["id"] for r in lines] == ["a", "c"]


def test_write_jsonl_atomic_leaves_no_temp_files(tmp_path):
    n = write_jsonl_atomic(tmp_path / "x.jsonl", [{"id": 1}, {"id": 2}])
    assert n == 2 and [p.name for p in tmp_path.iterdir()] == ["x.jsonl"]
