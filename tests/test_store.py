"""The run store keeps every complete record, sets damaged lines aside, cuts only a torn last
line, and lets one process at a time write a run folder."""
import json
import os
import stat
import subprocess
import sys

import pytest

from lema_plugin.runlock import LOCK_NAME, RunFolderBusy
from lema_plugin.store import OutputError, RunStore, write_atomic, write_jsonl_atomic


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


# -- a damaged line in the middle is reported and set aside, never a silent truncation ----------


def test_a_damaged_middle_line_is_set_aside_and_the_records_after_it_kept(tmp_path, caplog):
    path = tmp_path / "paths.jsonl"
    good = [json.dumps({"id": f"r{i}", "n": i}) for i in range(6)]
    bad = ['{"id": "r-broken", "n": ', "[1, 2]", '{"no_id": 1}\r{"id": "cr"}']
    lines = good[:2] + [bad[0]] + good[2:4] + [bad[1], bad[2]] + good[4:]
    path.write_bytes("".join(line + "\n" for line in lines).encode() + b'\xff\xfe{"id": "x"}\n' + b'{"id": "torn", "n"')
    with caplog.at_level("WARNING"), RunStore(path) as store:
        assert store.ids() == {f"r{i}" for i in range(6)}
        store.append({"id": "new"})
    warnings = [r.getMessage() for r in caplog.records]
    for lineno in (3, 6, 7, 10):
        assert any(f"{path}:{lineno}:" in w for w in warnings), (lineno, warnings)
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == [f"r{i}" for i in range(6)] + ["new"]
    damaged = (tmp_path / "paths.jsonl.damaged").read_bytes()
    assert damaged == "".join(b + "\n" for b in bad).encode() + b'\xff\xfe{"id": "x"}\n'
    with RunStore(path) as again:  # nothing more to set aside on the next open
        assert len(again) == 7
    assert (tmp_path / "paths.jsonl.damaged").read_bytes() == damaged


def test_deeply_nested_json_in_the_store_is_a_damaged_line(tmp_path):
    path = tmp_path / "paths.jsonl"
    path.write_text('{"id": "a"}\n' + "[" * 100000 + "]" * 100000 + '\n{"id": "b"}\n')
    with RunStore(path) as store:
        assert store.ids() == {"a", "b"}
    assert (tmp_path / "paths.jsonl.damaged").exists()


# -- text that cannot be encoded never stops the store ---------------------------------------


def test_a_lone_surrogate_is_stored_as_a_replacement_character(tmp_path):
    path = tmp_path / "paths.jsonl"
    with RunStore(path) as store:
        assert store.append({"id": "a", "text": "cut emoji \ud83d"})
    write_jsonl_atomic(tmp_path / "copy.jsonl", [{"id": "a", "text": "\udc00 too"}])
    assert json.loads(path.read_text(encoding="utf-8"))["text"] == "cut emoji \ufffd"
    assert json.loads((tmp_path / "copy.jsonl").read_text(encoding="utf-8"))["text"] == "\ufffd too"


# -- outputs get the user's umask ---------------------------------------------------------------


def test_atomic_outputs_and_stores_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_jsonl_atomic(tmp_path / "a.jsonl", [{"id": 1}])
        write_atomic(tmp_path / "b.json", "{}")
        with RunStore(tmp_path / "c.jsonl") as store:
            store.append({"id": "c"})
        os.umask(0o027)
        write_atomic(tmp_path / "d.json", "{}")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {"a.jsonl": 0o644, "b.json": 0o644, "c.jsonl": 0o644, "d.json": 0o640}


# -- output paths that cannot be created: one error naming the path ------------------------------


def test_an_output_folder_under_a_regular_file_is_an_output_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=f"{tmp_path / 'file' / 'run'}: cannot create"):
        RunStore(tmp_path / "file" / "run" / "paths.jsonl")
    with pytest.raises(OutputError, match="a file with that name is in the way"):
        write_atomic(tmp_path / "file" / "summary.json", "{}")
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(OutputError, match="a folder with that name is in the way"):
        write_atomic(tmp_path / "folder.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.json"]


# -- one writer per run folder ------------------------------------------------------------------

def test_a_second_process_is_refused_with_the_holders_pid_and_command(tmp_path, hold_store):
    path = tmp_path / "run" / "paths.jsonl"
    holder = hold_store(path, "--pretend-option")
    other = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom lema_plugin.store import RunStore\nRunStore(sys.argv[1])", str(path)],
        capture_output=True, text=True,
    )
    assert other.returncode != 0 and "RunFolderBusy" in other.stderr
    with pytest.raises(RunFolderBusy) as info:
        RunStore(tmp_path / "run" / "other.jsonl")
    message = str(info.value)
    assert f"pid {holder.pid}" in message and "--pretend-option" in message and "\n" not in message
    with pytest.raises(RunFolderBusy):  # a rename over its files is refused too
        write_jsonl_atomic(path, [])
    assert json.loads(path.read_text())["id"] == "held"
    holder.kill()
    holder.wait()
    # killed without any clean-up: its lock file is left behind, and taken over
    assert (tmp_path / "run" / LOCK_NAME).exists()
    with RunStore(path) as store:
        assert store.ids() == {"held"}
        assert str(os.getpid()) in (tmp_path / "run" / LOCK_NAME).read_text()
    assert not (tmp_path / "run" / LOCK_NAME).exists(), "the last holder removes the lock file"


def test_the_lock_is_reentrant_within_one_process(tmp_path):
    with RunStore(tmp_path / "a.jsonl") as a, RunStore(tmp_path / "b.jsonl") as b:
        a.append({"id": "1"})
        b.append({"id": "2"})
        write_jsonl_atomic(tmp_path / "c.jsonl", [{"id": "3"}])
        assert (tmp_path / LOCK_NAME).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "b.jsonl", "c.jsonl"]
