"""The README's reliability promises, checked through the `lema` commands against the scripted
server: text that cannot be encoded, one writer per run folder, bad bytes and bad paths."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_testing.scripted_server import Reply, ScriptedServer

DEAD_URL = "http://127.0.0.1:9/v1"  # nothing listens: a test that reaches it has paid too early
DEEP = "[" * 100000 + "]" * 100000


def problem_file(path: Path, extra_lines: list[bytes] = ()) -> Path:
    rows = [{"question": f"What is {n} plus {n}?", "answer": f"#### {2 * n}"} for n in (1, 2, 3)]
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in rows[:1]) + b"".join(line + b"\n" for line in extra_lines)
                     + b"".join(json.dumps(r).encode() + b"\n" for r in rows[1:]))
    return path


def sample_args(data_file: Path, out: Path, url: str, *extra: str) -> list[str]:
    return ["sample", "--data-file", str(data_file), "--generator", f"g=m@{url}", "-k", "2",
            "--max-retries", "0", "--quiet", "--out", str(out), *extra]


def dead_recipe(path: Path, data_file: Path) -> Path:
    path.write_text(f"data_file: {data_file}\ngenerators: [{{model: m, base_url: '{DEAD_URL}'}}]\n"
                    f"corrector: {{model: m, base_url: '{DEAD_URL}'}}\n")
    return path


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


# -- 1. a reply that cannot be encoded ---------------------------------------------------------


@pytest.mark.parametrize("no_cache", [False, True], ids=["cache", "no-cache"])
def test_a_reply_with_a_lone_surrogate_is_stored_and_the_rerun_is_clean(tmp_path, no_cache):
    data = problem_file(tmp_path / "problems.jsonl")
    extra = ("--no-cache",) if no_cache else ()
    with ScriptedServer(lambda body, attempt: Reply(content="I think 7 \U0001F600. The answer is 7.", lone_surrogate=True)) as server:
        first = CliRunner().invoke(main, sample_args(data, tmp_path / "out", server.base_url, *extra))
        assert first.exit_code == 0, first.output
        assert server.request_count == 6
        again = CliRunner().invoke(main, sample_args(data, tmp_path / "out", server.base_url, *extra))
        assert again.exit_code == 0, again.output
        assert server.request_count == 6, "the rerun found every path in the store"
    paths = [json.loads(line) for line in (tmp_path / "out" / "paths.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(paths) == 6 and all(p["text"].endswith("The answer is 7.\ufffd") and "\U0001F600" in p["text"] for p in paths)
    assert all(p["kind"] == "wrong" for p in paths)


def test_grade_survives_a_lone_surrogate_bad_bytes_and_deep_nesting(tmp_path):
    good = {"completion": "The answer is 4.", "answer": "4"}
    lines = [
        json.dumps(good).encode(),
        b'{"completion": "The answer is 4. \\ud83d", "answer": "4"}',
        b'{"completion": "The answer is \xff4.", "answer": "4"}',
        DEEP.encode(),
        json.dumps({**good, "completion": "The answer is 5."}).encode(),
    ]
    predictions = tmp_path / "preds.jsonl"
    predictions.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "graded.jsonl"
    result = CliRunner().invoke(main, ["grade", "--dataset", "gsm8k", "--predictions", str(predictions), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "accuracy 0.6667 (2/3)" in result.output
    column = lines[2].index(0xFF) + 1
    assert f"{predictions}:3: not valid UTF-8 (byte 0xff at column {column})" in result.output
    assert f"{predictions}:4: JSON nested too deeply to read" in result.output
    graded = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [g["correct"] for g in graded] == [True, True, False]
    assert graded[1]["completion"] == "The answer is 4. \ufffd"


# -- 2. one writer per run folder ---------------------------------------------------------------

def test_a_second_run_on_a_busy_folder_is_refused_in_one_line(tmp_path, hold_store):
    out = tmp_path / "out"
    holder = hold_store(out / "paths.jsonl", "sample", "--out", str(out))
    data = problem_file(tmp_path / "problems.jsonl")
    with ScriptedServer(lambda body, attempt: "The answer is 2.") as server:
        second = subprocess.run([sys.executable, "-m", "lema_plugin.cli", *sample_args(data, out, server.base_url)],
                                capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(Path.cwd())})
        assert server.request_count == 0
    assert second.returncode == 1, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "in use by another run" in lines[0] and f"pid {holder.pid}" in lines[0], second.stderr
    assert f"sample --out {out}" in lines[0]
    assert [json.loads(line)["id"] for line in (out / "paths.jsonl").read_text().splitlines()] == ["held"]


# -- 6 and 7. bad bytes, deep nesting and impossible output paths: one line each --------------------


@pytest.mark.parametrize(
    "line, message",
    [(DEEP.encode(), ":2: JSON nested too deeply to read"), (b'{"question": "caf\xe9?", "answer": "1"}', ":2: not valid UTF-8 (byte 0xe9")],
    ids=["deep", "latin-1"],
)
def test_bad_lines_in_an_input_file_are_named_by_file_and_line(tmp_path, line, message):
    data = problem_file(tmp_path / "problems.jsonl", [line])
    error = one_line_error(CliRunner().invoke(main, sample_args(data, tmp_path / "out", DEAD_URL)))
    assert f"{data}{message}" in error
    mistakes = tmp_path / "mistakes.jsonl"
    mistakes.write_bytes(b'{"id": "x", "question": "q", "answer": "1", "dataset": "gsm8k", "text": "t"}\n' + line + b"\n")
    error = one_line_error(CliRunner().invoke(main, ["correct", "--mistakes", str(mistakes), "--corrector", f"c=m@{DEAD_URL}",
                                                     "--quiet", "--out", str(tmp_path / "corr")]))
    assert f"{mistakes}{message}" in error


def test_an_out_folder_under_a_regular_file_is_one_line(tmp_path):
    data = problem_file(tmp_path / "problems.jsonl")
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder")
    recipe = dead_recipe(tmp_path / "recipe.yaml", data)
    for command in (sample_args(data, blocker / "run", DEAD_URL), ["run", str(recipe), "--no-train", "--out", str(blocker / "x")], ["cot", "--data-file", str(data), "--quiet", "--out", str(blocker / "cot")]):
        error = one_line_error(CliRunner().invoke(main, command))
        assert str(blocker) in error
    assert blocker.read_text() == "a file, not a folder"


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux sysfs: a folder even root may not write in")
def test_an_out_folder_that_may_not_be_created_is_one_line(tmp_path):
    data = problem_file(tmp_path / "problems.jsonl")
    recipe = dead_recipe(tmp_path / "recipe.yaml", data)
    forbidden = Path("/sys/kernel/lema-test-out")
    for command in (sample_args(data, forbidden, DEAD_URL), ["run", str(recipe), "--no-train", "--out", str(forbidden)]):
        error = one_line_error(CliRunner().invoke(main, command))
        assert str(forbidden) in error and ("permission denied" in error.lower() or "not permitted" in error)


# -- a preview writes nothing; SIGTERM and a full disk are clean stops ---------------------------


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")} \
        if folder.exists() else {}


def test_estimate_writes_nothing_and_leaves_the_folder_open_to_other_settings(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("LEMA_DATA_DIR", str(shared_data))
    data = problem_file(tmp_path / "problems.jsonl")
    with ScriptedServer(lambda body, attempt: "The answer is 2.") as server:
        fresh = tmp_path / "fresh"
        preview = CliRunner().invoke(main, [*sample_args(data, fresh, server.base_url, "--temperature", "0.2"), "--estimate"])
        assert preview.exit_code == 0 and tree(fresh) == {}, preview.output  # no folder, no manifest, no empty store
        real = CliRunner().invoke(main, sample_args(data, fresh, server.base_url, "--temperature", "0.9"))
        assert real.exit_code in (0, 4), real.output  # not refused: the preview remembered nothing
        before = tree(fresh)
        again = CliRunner().invoke(main, [*sample_args(data, fresh, server.base_url, "-k", "4"), "--estimate"])
        assert again.exit_code == 0 and tree(fresh) == before, again.output  # a folder with records: untouched
        recipe = tmp_path / "r.yaml"
        recipe.write_text(f"data_file: {data}\nout: {tmp_path / 'run'}\ngenerators: [{{model: m, base_url: '{server.base_url}'}}]\n"
                          f"corrector: {{model: c, base_url: '{server.base_url}', price: 1/1}}\n")
        run = CliRunner().invoke(main, ["run", str(recipe), "--estimate"])
        assert run.exit_code == 0 and "USD" in run.output, run.output
        assert server.request_count == 2 * 3 and not (tmp_path / "run").exists()  # only the real sample run asked


def test_sigterm_stops_like_ctrl_c_with_a_message_and_its_own_status(tmp_path):
    import signal
    import threading

    data = problem_file(tmp_path / "problems.jsonl")
    answered = threading.Event()

    def slow(body, attempt):
        if answered.is_set():
            return Reply(hang=True)
        answered.set()
        return "The answer is 2."

    with ScriptedServer(slow) as server:
        process = subprocess.Popen([sys.executable, "-m", "lema_plugin.cli",
                                    *sample_args(data, tmp_path / "out", server.base_url, "--concurrency", "1")],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, "PYTHONPATH": str(Path.cwd())})
        paths = tmp_path / "out" / "paths.jsonl"
        for _ in range(600):  # until the first answer is stored and the second request hangs
            if paths.exists() and paths.read_text().count("\n") == 1 and server.in_flight:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert err.strip().splitlines()[-1] == ("terminated (SIGTERM): records written so far are kept; run the same "
                                           "command again to resume"), err
    assert len(paths.read_text().splitlines()) == 1


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare to mount a small file system")
def test_a_full_disk_names_the_file_that_could_not_be_written(tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k none {small}"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {probe.stderr.decode().strip()}")
    data = problem_file(tmp_path / "problems.jsonl")
    big = "Step 1: think. " * 2500 + "The answer is 2."  # 37 KB a path: the second one fills 64 KB
    with ScriptedServer(lambda body, attempt: big) as server:
        command = [sys.executable, "-m", "lema_plugin.cli",
                   *sample_args(data, small / "out", server.base_url, "--cache-dir", str(tmp_path / "cache"))]
        script = f"mount -t tmpfs -o size=64k none {small} && exec {shlex.join(command)}"
        full = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    assert full.returncode == 1, full.stderr
    last = full.stderr.strip().splitlines()[-1]
    assert last == f"Error: {small}/out/paths.jsonl: cannot write: No space left on device", full.stderr


def test_the_batch_cost_in_every_summary_is_the_clients_at_half_price(tmp_path):
    good = "Incorrect Step: Step 2.\nExplanation: 3 + 4 is 7.\nCorrect Solution:\nStep 2: 3 + 4 = 7. The answer is 7."
    mistakes = tmp_path / "m.jsonl"
    mistakes.write_text(json.dumps({"id": "m1", "dataset": "gsm8k", "question": "Tom has 3 apples and buys 4. How many?",
                                    "answer": "7", "text": "Tom has 3.\nHe buys 4, so 8. The answer is 8."}) + "\n")
    costs = {}
    with ScriptedServer(lambda body, attempt: good) as server:
        for mode in ("chat", "batch"):
            args = ["correct", "--mistakes", str(mistakes), "--corrector", f"c=m@{server.base_url};price=10/30;mode={mode}",
                    "--out", str(tmp_path / mode), "-q"]
            result = CliRunner().invoke(main, args)
            if result.exit_code == 75:
                server.finish_batches()
                result = CliRunner().invoke(main, args)
            assert result.exit_code == 0, result.output
            printed = float(re.search(r"; cost \$([\d.]+)", result.output).group(1))
            ledger = [json.loads(line) for line in (tmp_path / mode / "usage.jsonl").read_text().splitlines()]
            costs[mode] = (printed, sum(row["total"]["cost"] for row in ledger))
            assert "cost" not in json.dumps(json.loads((tmp_path / mode / "correct_summary.json").read_text()))
    assert costs["batch"][0] == pytest.approx(costs["chat"][0] / 2, abs=1e-4)
    assert costs["batch"][1] == pytest.approx(costs["chat"][1] / 2) and costs["chat"][1] > 0
