"""`--max-cost` is the run folder's budget: it holds across reruns and batch passes, counts every
attempt a server may bill, refuses prices that would turn it off, and says what is spent and
left. The scripted server bills each answer it produces (`prices=`), and its bill is the figure
checked: what a real account would be charged."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lema_plugin.cli import main
from lema_testing.scripted_server import Reply, ScriptedServer

# Completion tokens only, $0.1 each; a reply of exactly --max-tokens words costs its worst case
PRICE = "0/100000"
SERVER_PRICES = (0.0, 100000.0)
TOKENS = 10
REPLY = "Incorrect Step: Step 2. The answer is 7 so stop."  # 10 whitespace tokens: $1.00


def mistakes_file(path: Path, count: int) -> Path:
    rows = []
    for n in range(count):
        question = f"Q{n}: Tom has 3 apples and buys 4 more. How many apples does he have?"
        rows.append({"id": f"m{n}", "dataset": "gsm8k", "question": question, "answer": "7",
                     "text": "Tom has 3 apples.\nHe buys 4 more, so 3 + 4 = 8. The answer is 8.", "correct": False})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def correct_args(tmp_path: Path, url: str, *extra: str, count: int = 6, batch: bool = False) -> list[str]:
    spec = f"c=m@{url};price={PRICE}" + (";mode=batch" if batch else "")
    return ["correct", "--mistakes", str(mistakes_file(tmp_path / "m.jsonl", count)), "--corrector", spec,
            "--max-tokens", str(TOKENS), "--concurrency", "1", "--out", str(tmp_path / "run"), "-q", *extra]


def stop_line(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("budget: "))


def test_the_cap_holds_for_the_run_folder_across_reruns_and_a_larger_cap_continues(tmp_path):
    with ScriptedServer(lambda body, attempt: REPLY, prices=SERVER_PRICES) as server:
        first = CliRunner().invoke(main, correct_args(tmp_path, server.base_url, "--max-cost", "2.5"))
        assert first.exit_code == 3, first.output
        assert server.billed == pytest.approx(2.0)
        again = CliRunner().invoke(main, correct_args(tmp_path, server.base_url, "--max-cost", "2.5"))
        assert again.exit_code == 3, again.output
        assert server.billed == pytest.approx(2.0)  # the folder had spent its cap's worth: nothing more
        line = stop_line(again.output)
        assert re.search(r"--max-cost \$2\.50 would be crossed: \$2\.0000 spent or reserved here so far "
                         r"\(this command \$0\.0000\), \$0\.5000 left", line), line
        more = CliRunner().invoke(main, correct_args(tmp_path, server.base_url, "--max-cost", "10"))
        assert more.exit_code in (0, 4), more.output  # raising the cap is the explicit way on
        assert server.billed == pytest.approx(6.0) and server.request_count == 6  # nothing bought twice
    from lema_plugin.llm.spend import SPEND_FILE

    spent = [json.loads(line) for line in (tmp_path / "run" / SPEND_FILE).read_text().splitlines()]
    assert sum(row["usd"] for row in spent if row["id"].startswith("s")) == pytest.approx(6.0)


def test_batch_passes_repeated_as_told_stay_under_the_cap(tmp_path):
    with ScriptedServer(lambda body, attempt: REPLY, prices=SERVER_PRICES) as server:
        args = correct_args(tmp_path, server.base_url, "--max-cost", "1.2", batch=True)
        codes = []
        for _ in range(4):  # "run the same command again", as the stop lines say
            result = CliRunner().invoke(main, args)
            codes.append(result.exit_code)
            server.finish_batches()
        assert server.billed <= 1.2 and server.billed == pytest.approx(1.0), codes  # two batch answers at $0.50
        assert codes[-1] == 3 and "$0.2000 left" in stop_line(result.output), result.output


def test_every_attempt_a_server_may_bill_is_counted(tmp_path):
    """A 200 with a broken body is billed by the server; its retry must be paid for out of the
    same budget, not outside it."""

    def broken_first(body, attempt):
        return Reply(content=REPLY, malformed=True) if attempt == 0 else REPLY

    with ScriptedServer(broken_first, prices=SERVER_PRICES) as server:
        result = CliRunner().invoke(main, correct_args(tmp_path, server.base_url, "--max-cost", "3.5",
                                                       "--max-retries", "2", count=3))
        assert result.exit_code == 3, result.output
        assert server.billed <= 3.5 and server.billed == pytest.approx(3.0)  # Q0 twice, Q1's broken answer


@pytest.mark.parametrize("price", ["nan/10", "1/inf", "-1/2"])
def test_a_price_that_would_turn_the_budget_off_is_refused(tmp_path, price):
    with ScriptedServer(lambda body, attempt: REPLY, prices=SERVER_PRICES) as server:
        args = correct_args(tmp_path, server.base_url, "--max-cost", "0.01")
        args[args.index("--corrector") + 1] = f"c=m@{server.base_url};price={price}"
        result = CliRunner().invoke(main, args)
        assert result.exit_code in (1, 2) and server.request_count == 0, result.output
        assert "finite numbers of at least 0" in result.output
        recipe = tmp_path / "r.yaml"
        recipe.write_text(yaml.safe_dump({"generators": [{"model": "m", "base_url": server.base_url, "price": price}]}))
        checked = CliRunner().invoke(main, ["run", str(recipe), "--check"])
        assert checked.exit_code == 1 and "generators.0.price: expected 'IN/OUT', two finite prices" in checked.output


@pytest.mark.parametrize("cap", ["nan", "inf", "-1"])
def test_a_cap_that_is_not_a_finite_amount_is_refused(tmp_path, cap):
    with ScriptedServer(lambda body, attempt: REPLY, prices=SERVER_PRICES) as server:
        result = CliRunner().invoke(main, correct_args(tmp_path, server.base_url, "--max-cost", cap))
        assert result.exit_code == 2 and server.request_count == 0, result.output
        assert "--max-cost" in result.output
        recipe = tmp_path / "r.yaml"
        recipe.write_text(f"max_cost: {cap}\ngenerators: [{{model: m, base_url: '{server.base_url}'}}]\n")
        checked = CliRunner().invoke(main, ["run", str(recipe), "--check"])
        assert checked.exit_code == 1 and "max_cost" in checked.output, checked.output
