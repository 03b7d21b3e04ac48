"""The OpenAI Batch API for endpoints in batch mode: submit, come back later, collect.

A run that reaches requests for a batch-mode endpoint writes them as batch input files (one line
per request, `custom_id` = the request's cache key), uploads them (files API, purpose `batch`),
creates the batches (24 h window) and records them in the run folder's ledger
(`.batches/batches.json`); then the stage stops with `BatchPending` ("submitted ...; run the same
command again to collect"). The same command run again polls those batches, downloads the output
and error files of the finished ones into `.batches/results.jsonl`, and hands every answer to the
stage exactly as an online reply (same `Completion`, same judge, verify and store path).

Failed and expired requests are submitted again, at most `MAX_TRIES` failed submissions per item
(`Ask.item`: all the attempts of one mistake together; else the request alone). An item that used
them is handed back as failed, without another submission, until its stage run ends with nothing
left pending in the ledger (`end_cycle`): so a loop of "run again while it exits 75" always ends,
and the run after that tries the item again.

Nothing is paid twice, nothing paid for is lost:
- a request already in a batch (pending or answered) is never submitted again; the ledger names
  the uploaded file before a batch is created, and a batch created but not recorded (the run was
  killed in between) is found again by its input file;
- a damaged line in a batch's output or error file is set aside (`.batches/NAME-KIND.jsonl.damaged`)
  with a warning naming the batch, file and line; every good answer is stored and only the
  requests without a readable answer are asked again;
- a damaged line in `results.jsonl` is set aside with a warning (`store.load_lines`) and the
  answers it held are downloaded again from their batch's files, not bought again;
- the worst case of a batch is reserved in the folder's spend ledger before the batch is created
  and settled to the answers' real cost (at the batch price) when it is collected;
- collected answers also go to the response cache, so a folder started over (`--fresh`) gets
  them free, as it gets every online answer.

Large jobs are split to stay under the API's limits: 50,000 requests and 200 MB per file.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EXIT_PENDING, LemaError
from ..keys import key_for, scrub
from ..records import RecordError
from ..store import disk_error, dumps_line, load_lines, set_aside, write_atomic
from .costs import BATCH_DISCOUNT, dollars, worst_case
from .types import Completion, Endpoint

log = logging.getLogger(__name__)

MAX_REQUESTS = 50_000  # per batch input file (the API's limit)
MAX_BYTES = 200 * 1024 * 1024  # per batch input file (the API's limit)
MAX_TRIES = 3  # failed submissions of one item before it is handed back as failed
DONE = ("completed", "expired", "failed", "cancelled")
LEDGER = "batches.json"


class BatchPending(LemaError):
    """Requests are waiting in batches: not an error, a "come back later" (exit status 75)."""

    exit_code = EXIT_PENDING


@dataclass
class Outcome:
    """What one pass over a stage's batch requests did."""

    submitted: int = 0
    submitted_batches: int = 0
    pending: int = 0
    pending_batches: set = field(default_factory=set)
    collected: int = 0
    budget_stopped: bool = False

    def message(self) -> str:
        parts = []
        if self.submitted:
            parts.append(f"submitted {self.submitted:,} requests in {self.submitted_batches:,} "
                         f"batch{'es' if self.submitted_batches != 1 else ''}")
        waiting = self.pending - self.submitted
        if waiting > 0:
            batches = len(self.pending_batches) - self.submitted_batches
            parts.append(f"{waiting:,} requests still pending in {batches:,} batch{'es' if batches != 1 else ''}")
        if self.collected:
            parts.append(f"collected {self.collected:,}")
        return "; ".join(parts) + "; run the same command again to collect"


class Ledger:
    """The run folder's record of batches and failed submissions (`batches.json`) and of answers
    (`results.jsonl`, read only when `with_results`)."""

    def __init__(self, folder: str | os.PathLike, with_results: bool = True):
        self.folder = Path(folder)
        self.path = self.folder / LEDGER
        self.results_path = self.folder / "results.jsonl"
        try:
            data = json.loads(self.path.read_text(encoding="utf-8")) if self.path.exists() else {}
        except (OSError, ValueError) as exc:
            raise LemaError(f"{self.path}: unreadable ({exc}); it records paid batches: restore it, or move "
                            f"{self.folder} aside to start its batches over") from None
        self.batches: dict[str, dict] = data.get("batches", {})  # local name -> entry
        self.failed: dict[str, int] = data.get("failed", {})  # item -> failed submissions this cycle
        self.results: dict[str, dict] = {}
        if not with_results:
            return

        def check(row: dict, lineno: int) -> None:
            if not isinstance(row.get("key"), str):
                raise RecordError(self.results_path, lineno, "no string key", field="key")

        rows, damaged = load_lines(self.results_path, check)
        for row in rows:
            self._take(row)
        if damaged:  # answers lost with those lines: download them again from their batches
            for entry in self.batches.values():
                if entry.get("collected") and any(key not in self.results for key in entry["keys"]):
                    entry["recollect"] = True

    def _take(self, row: dict) -> None:
        if row.get("forget"):  # written by earlier versions
            self.results.pop(row["key"], None)
        else:
            self.results[row["key"]] = row

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps({"batches": self.batches, "failed": self.failed}, indent=1) + "\n")

    def add_results(self, rows: list[dict]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.results_path, "a", encoding="utf-8") as handle:
                handle.write("".join(dumps_line(row) for row in rows))
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise disk_error(self.results_path, exc) from None
        for row in rows:
            self._take(row)

    def pending_keys(self) -> dict[str, str]:
        """key -> local batch name, for batches not collected yet."""
        return {key: name for name, entry in self.batches.items() if not entry.get("collected")
                for key in entry["keys"]}


def waiting(folder: str | os.PathLike) -> list[dict]:
    """The batches of the ledger in `folder` not collected yet (each entry with its name)."""
    path = Path(folder) / LEDGER
    if not path.exists():
        return []
    ledger = Ledger(folder, with_results=False)
    return [{"name": name, **entry} for name, entry in ledger.batches.items() if not entry.get("collected")]


def end_cycle(folder: str | os.PathLike | None) -> None:
    """A stage run ended: when nothing is left pending in the ledger, the items that used their
    submissions may be tried again by the next run."""
    if folder is None or not (Path(folder) / LEDGER).exists():
        return
    ledger = Ledger(folder, with_results=False)
    if ledger.failed and not any(not entry.get("collected") for entry in ledger.batches.values()):
        ledger.failed = {}
        ledger.save()


def batch_path(endpoint: Endpoint) -> str:
    return "/v1/chat/completions" if endpoint.mode == "chat" else "/v1/completions"


def _api(endpoint: Endpoint):
    import openai

    return openai.AsyncOpenAI(base_url=endpoint.base_urls[0], api_key=key_for(endpoint), max_retries=3,
                              timeout=endpoint.timeout or 120.0)


async def run_batches(client, asks: list, on_reply, body_of, key_of, parse) -> Outcome:
    """One pass over `asks` (all for batch-mode endpoints): hand over what is answered, submit
    what is not asked yet, and say what is still pending. `body_of`, `key_of` and `parse` are the
    client's request body, cache key and reply parser, so a batch answer is read like an online one."""
    if client.batch_dir is None:
        raise LemaError("batch mode needs a run folder for its ledger (give the client a batch_dir)")
    ledger = Ledger(client.batch_dir)
    outcome = Outcome()
    by_key: dict[str, list] = {}
    for ask in asks:
        by_key.setdefault(key_of(ask.endpoint, ask.request), []).append(ask)
    endpoints = {key: group[0].endpoint for key, group in by_key.items()}
    item_of = {key: group[0].item or key for key, group in by_key.items()}

    await _adopt_unrecorded(ledger, endpoints)
    pending = ledger.pending_keys()
    names = {pending[k] for k in by_key if k in pending}
    names |= {name for name, entry in ledger.batches.items() if entry.get("recollect") and any(k in by_key for k in entry["keys"])}
    for name in sorted(names):
        await _poll(client, ledger, name, endpoints, parse)
    pending = ledger.pending_keys()

    to_submit: list[str] = []
    for key, group in by_key.items():
        result = ledger.results.get(key)
        tries = ledger.failed.get(item_of[key], 0)
        if key in pending:
            outcome.pending += len(group)
            outcome.pending_batches.add(pending[key])
        elif result is not None and "error" not in result:
            completion = Completion(text=result["text"], finish_reason=result.get("finish_reason"),
                                    prompt_tokens=result["prompt_tokens"], completion_tokens=result["completion_tokens"])
            outcome.collected += len(group)
            for ask in group:
                on_reply(ask, completion)
        elif tries >= MAX_TRIES:  # the item used its submissions: failed until the next cycle
            why = result["error"] if result is not None else "not submitted again"
            failed = Completion(error=f"{why} (batch: {tries} failed submissions of this item; run again to retry)")
            for ask in group:
                on_reply(ask, failed)
        else:
            to_submit.append(key)

    groups: dict[tuple, list[str]] = {}
    for key in to_submit:
        endpoint = endpoints[key]
        groups.setdefault((endpoint.base_urls[0], endpoint.model, endpoint.mode, endpoint.api_key_env), []).append(key)
    for keys in groups.values():
        endpoint = endpoints[keys[0]]
        lines: list[tuple[str, bytes, float]] = []
        total = 0.0
        for key in keys:
            ask = by_key[key][0]
            cost = worst_case(endpoint, ask.request, batch=True)
            if client.budget is not None and not client.budget.fits(total + cost):
                outcome.budget_stopped = True
                break
            total += cost
            line = {"custom_id": key, "method": "POST", "url": batch_path(endpoint), "body": body_of(endpoint, ask.request)}
            lines.append((key, (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8"), cost))
        for chunk in _chunks(lines, client.batch_max_requests, client.batch_max_bytes):
            if not await _submit(client, ledger, endpoint, chunk, item_of):
                outcome.budget_stopped = True
                break
            outcome.submitted += len(chunk)
            outcome.submitted_batches += 1
            outcome.pending += sum(len(by_key[key]) for key, _, _ in chunk)
        if outcome.budget_stopped:
            client.budget.closed = True  # one stop: nothing smaller is sent after a refusal
            break
    outcome.pending_batches |= {name for name, entry in ledger.batches.items() if not entry.get("collected")
                                and any(k in by_key for k in entry["keys"])}
    return outcome


def _chunks(lines: list[tuple[str, bytes, float]], max_requests: int, max_bytes: int):
    chunk: list = []
    size = 0
    for item in lines:
        if chunk and (len(chunk) >= max_requests or size + len(item[1]) > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += len(item[1])
    if chunk:
        yield chunk


async def _submit(client, ledger: Ledger, endpoint: Endpoint, chunk: list, item_of: dict[str, str]) -> bool:
    """Reserve the chunk's worst case, upload its input file and create its batch; the ledger
    names the file before the batch exists, so a run killed in between finds the batch again
    instead of paying twice. False (nothing sent) when the budget refuses the reservation."""
    name = f"b{len(ledger.batches) + 1:05d}"
    data = b"".join(line for _, line, _ in chunk)
    reserved = sum(cost for _, _, cost in chunk)
    token = client.budget.reserve(reserved) if client.budget is not None else ""
    if token is None:
        return False
    async with _api(endpoint) as api:
        uploaded = await api.files.create(file=(f"lema-{name}.jsonl", data, "application/jsonl"), purpose="batch")
        keys = [key for key, _, _ in chunk]
        ledger.batches[name] = {"endpoint": endpoint.label, "base_url": endpoint.base_urls[0], "model": endpoint.model,
                                "input_file_id": uploaded.id, "batch_id": None, "status": "uploaded",
                                "keys": keys, "reserved": reserved, "reservation": token,
                                "worst": [round(cost, 9) for _, _, cost in chunk],
                                "items": {key: item_of[key] for key in keys if item_of[key] != key}}
        ledger.save()
        batch = await api.batches.create(input_file_id=uploaded.id, endpoint=batch_path(endpoint),
                                         completion_window="24h", metadata={"lema_batch": name})
    ledger.batches[name].update(batch_id=batch.id, status=batch.status)
    ledger.save()
    return True


async def _adopt_unrecorded(ledger: Ledger, endpoints: dict[str, Endpoint]) -> None:
    """Batches whose file was uploaded but whose creation was not recorded: find them by input
    file, or create them now."""
    for name, entry in ledger.batches.items():
        if entry.get("batch_id") or entry.get("collected"):
            continue
        endpoint = next((endpoints[k] for k in entry["keys"] if k in endpoints), None)
        if endpoint is None:
            continue
        async with _api(endpoint) as api:
            found = None
            async for batch in api.batches.list(limit=100):
                if batch.input_file_id == entry["input_file_id"]:
                    found = batch
                    break
            if found is None:
                found = await api.batches.create(input_file_id=entry["input_file_id"], endpoint=batch_path(endpoint),
                                                 completion_window="24h", metadata={"lema_batch": name})
        entry.update(batch_id=found.id, status=found.status)
        ledger.save()


async def _poll(client, ledger: Ledger, name: str, endpoints: dict[str, Endpoint], parse) -> None:
    """Look at one batch; when it is over, download its answers and errors into the ledger (a
    batch marked `recollect` only fills in the answers the ledger lost)."""
    entry = ledger.batches[name]
    endpoint = next((endpoints[k] for k in entry["keys"] if k in endpoints), None)
    if endpoint is None or not entry.get("batch_id"):
        return
    again = bool(entry.get("recollect"))
    mine = set(entry["keys"])
    rows: dict[str, dict] = {}
    damaged = 0
    async with _api(endpoint) as api:
        batch = await api.batches.retrieve(entry["batch_id"])
        entry["status"] = batch.status
        if batch.status not in DONE:
            ledger.save()
            return
        for kind, file_id in (("output", batch.output_file_id), ("error", batch.error_file_id)):
            if not file_id:
                continue
            content = await api.files.content(file_id)
            for number, line in enumerate(content.content.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = _result(json.loads(line), endpoint, parse)
                except (ValueError, TypeError, AttributeError, KeyError, RecursionError) as exc:
                    damaged += 1
                    aside = set_aside(ledger.folder / f"{name}-{kind}.jsonl", line + b"\n")
                    log.warning("batch %s (%s): line %d of its %s file %s is damaged (%s); set aside in %s, and "
                                "its request is asked again", name, entry["batch_id"], number, kind, file_id,
                                scrub(f"{type(exc).__name__}: {exc}")[:120], aside)
                    continue
                if row["key"] in mine:
                    rows[row["key"]] = row
    reason = f"batch {batch.status}"
    if damaged:
        reason = f"no readable answer in batch {name}'s files ({damaged} damaged line{'s' if damaged > 1 else ''} set aside)"
    elif batch.status == "failed" and getattr(batch, "errors", None) and batch.errors.data:
        reason += ": " + "; ".join(str(e.message) for e in batch.errors.data[:3])
    for key in entry["keys"]:
        rows.setdefault(key, {"key": key, "error": scrub(reason)})
    _cache(client, endpoint, rows.values())
    if again:
        for row in rows.values():
            row.pop("billed", None)  # only what the ledger lost; counted and settled when first collected
        ledger.add_results([row for key, row in rows.items() if key not in ledger.results])
        entry.pop("recollect", None)
        ledger.save()
        return
    usage = client.usage_for(endpoint)
    actual = 0.0
    worst = entry.get("worst") or [0.0] * len(entry["keys"])
    for key, most in zip(entry["keys"], worst):
        row = rows[key]
        usage.requests += 1
        if row.pop("billed", False):  # a 200 whose body could not be read: it may be billed
            actual += most
        if "error" in row:
            usage.failures += 1
            item = entry.get("items", {}).get(key, key)
            ledger.failed[item] = ledger.failed.get(item, 0) + 1
        else:
            usage.add_tokens(row["prompt_tokens"], row["completion_tokens"],
                             _half(endpoint.price_prompt), _half(endpoint.price_completion))
            actual += dollars(endpoint, row["prompt_tokens"], row["completion_tokens"], batch=True) or 0.0
    ledger.add_results(list(rows.values()))
    if client.budget is not None:
        client.budget.settle(entry.get("reservation"), actual)
    entry["collected"] = True
    ledger.save()


def _cache(client, endpoint: Endpoint, rows) -> None:
    """Put the answers in the response cache too, as an online answer is: a run that starts its
    folder over (`--fresh`) gets them free, like everything else it asked before."""
    if getattr(client, "cache", None) is None:
        return
    for row in rows:
        if "error" not in row:
            try:
                client.cache.put(row["key"], {"model": endpoint.model, **{k: row[k] for k in (
                    "text", "finish_reason", "prompt_tokens", "completion_tokens")}})
            except OSError as exc:  # the ledger holds the answer: a cache that cannot be written loses nothing
                log.warning("could not cache a batch answer under %s: %s", client.cache.root, exc)


def _half(price: float | None) -> float | None:
    return None if price is None else price * BATCH_DISCOUNT


def _result(row: dict, endpoint: Endpoint, parse) -> dict:
    """One output or error line as a ledger result: the answer, or why there is none (keys
    scrubbed). Raises ValueError (or TypeError, KeyError, ...) for a line that is no result."""
    if not isinstance(row, dict) or not isinstance(row.get("custom_id"), str):
        raise ValueError("no custom_id")
    key = row["custom_id"]
    response = row.get("response") or {}
    if not isinstance(response, dict):
        raise ValueError("response is not an object")
    if row.get("error") or response.get("status_code") != 200:
        body = response.get("body") if isinstance(response.get("body"), dict) else {}
        error = row.get("error") or body.get("error") or {}
        message = error.get("message") if isinstance(error, dict) else str(error)
        status = response.get("status_code")
        return {"key": key, "error": scrub(f"{'HTTP ' + str(status) + ': ' if status else ''}{message or 'no answer'}")}
    try:
        completion: Completion = parse(json.dumps(response.get("body")).encode("utf-8"), endpoint)
    except ValueError as exc:  # a 200 with a broken body: failed, and maybe billed
        return {"key": key, "error": scrub(str(exc)), "billed": True}
    return {"key": key, "text": completion.text, "finish_reason": completion.finish_reason,
            "prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens}
