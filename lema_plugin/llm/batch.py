"""The OpenAI Batch API for endpoints in batch mode: submit, come back later, collect.

A run that reaches requests for a batch-mode endpoint writes them as batch input files (one line
per request, `custom_id` = the request's cache key), uploads them (files API, purpose `batch`),
creates the batches (24 h window) and records them in the run folder's ledger
(`.batches/batches.json`); then the stage stops with `BatchPending` ("submitted ...; run the same
command again to collect"). The same command run again polls those batches, downloads the output
and error files of the finished ones into `.batches/results.jsonl`, and hands every answer to the
stage exactly as an online reply (same `Completion`, same judge, verify and store path). Failed
and expired items are submitted again, at most `MAX_TRIES` times per run of tries; after that
they are handed over as failed requests, which the stage records and a later run asks again.

Nothing is paid twice: a request already in a batch (pending or answered) is never submitted
again, the ledger is written before a batch is created (naming its uploaded file), and a batch
that was created but not recorded (the run was killed in between) is found again by its input
file. Large jobs are split to stay under the API's limits: 50,000 requests and 200 MB per file.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import openai

from ..errors import EXIT_PENDING, LemaError
from ..records import repair_text
from ..store import write_atomic
from .costs import BATCH_DISCOUNT, worst_case
from .types import Completion, Endpoint

MAX_REQUESTS = 50_000  # per batch input file (the API's limit)
MAX_BYTES = 200 * 1024 * 1024  # per batch input file (the API's limit)
MAX_TRIES = 3  # submissions of one request before it is handed back as failed
DONE = ("completed", "expired", "failed", "cancelled")


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
    """The run folder's record of batches (`batches.json`) and answers (`results.jsonl`)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / "batches.json"
        self.results_path = self.folder / "results.jsonl"
        data = json.loads(self.path.read_text(encoding="utf-8")) if self.path.exists() else {}
        self.batches: dict[str, dict] = data.get("batches", {})  # local name -> entry
        self.tries: dict[str, int] = data.get("tries", {})
        self.results: dict[str, dict] = {}
        if self.results_path.exists():
            for line in self.results_path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except ValueError:  # a torn last line: that batch is downloaded again
                    continue
                if row.get("forget"):
                    self.results.pop(row["key"], None)
                else:
                    self.results[row["key"]] = row

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps({"batches": self.batches, "tries": self.tries}, indent=1) + "\n")

    def add_results(self, rows: list[dict]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.results_path, "a", encoding="utf-8") as handle:
            for row in rows:
                handle.write(repair_text(json.dumps(row, ensure_ascii=False)) + "\n")
                if row.get("forget"):
                    self.results.pop(row["key"], None)
                else:
                    self.results[row["key"]] = row
            handle.flush()
            os.fsync(handle.fileno())

    def pending_keys(self) -> dict[str, str]:
        """key -> local batch name, for batches not collected yet."""
        return {key: name for name, entry in self.batches.items() if not entry.get("collected")
                for key in entry["keys"]}


def batch_path(endpoint: Endpoint) -> str:
    return "/v1/chat/completions" if endpoint.mode == "chat" else "/v1/completions"


def _api(endpoint: Endpoint) -> openai.AsyncOpenAI:
    api_key = (os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None) or "EMPTY"
    return openai.AsyncOpenAI(base_url=endpoint.base_urls[0], api_key=api_key, max_retries=3,
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

    await _adopt_unrecorded(ledger, endpoints)
    pending = ledger.pending_keys()
    for name in sorted({pending[k] for k in by_key if k in pending}):
        await _poll(client, ledger, name, endpoints, parse)
    pending = ledger.pending_keys()

    to_submit: list[str] = []
    for key, group in by_key.items():
        result = ledger.results.get(key)
        if key in pending:
            outcome.pending += len(group)
            outcome.pending_batches.add(pending[key])
        elif result is not None and "error" not in result:
            completion = Completion(text=result["text"], finish_reason=result.get("finish_reason"),
                                    prompt_tokens=result["prompt_tokens"], completion_tokens=result["completion_tokens"])
            outcome.collected += len(group)
            for ask in group:
                on_reply(ask, completion)
        elif result is not None and ledger.tries.get(key, 0) >= MAX_TRIES:
            failed = Completion(error=f"{result['error']} (batch, {ledger.tries[key]} tries)")
            ledger.tries.pop(key)
            ledger.add_results([{"key": key, "forget": True}])  # a later run tries again
            for ask in group:
                on_reply(ask, failed)
        else:
            to_submit.append(key)
    ledger.save()

    groups: dict[tuple, list[str]] = {}
    for key in to_submit:
        endpoint = endpoints[key]
        groups.setdefault((endpoint.base_urls[0], endpoint.model, endpoint.mode, endpoint.api_key_env), []).append(key)
    for keys in groups.values():
        endpoint = endpoints[keys[0]]
        lines: list[tuple[str, bytes, float]] = []
        for key in keys:
            ask = by_key[key][0]
            cost = worst_case(endpoint, ask.request, batch=True)
            if client.budget is not None and not client.budget.reserve(cost):
                outcome.budget_stopped = True
                break
            line = {"custom_id": key, "method": "POST", "url": batch_path(endpoint), "body": body_of(endpoint, ask.request)}
            lines.append((key, (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8"), cost))
        for chunk in _chunks(lines, client.batch_max_requests, client.batch_max_bytes):
            await _submit(client, ledger, endpoint, chunk)
            outcome.submitted += len(chunk)
            outcome.submitted_batches += 1
            outcome.pending += sum(len(by_key[key]) for key, _, _ in chunk)
        if outcome.budget_stopped:
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


async def _submit(client, ledger: Ledger, endpoint: Endpoint, chunk: list) -> None:
    """Upload one input file and create its batch; the ledger names the file before the batch
    exists, so a run killed in between finds the batch again instead of paying twice."""
    name = f"b{len(ledger.batches) + 1:05d}"
    data = b"".join(line for _, line, _ in chunk)
    reserved = sum(cost for _, _, cost in chunk)
    async with _api(endpoint) as api:
        uploaded = await api.files.create(file=(f"lema-{name}.jsonl", data, "application/jsonl"), purpose="batch")
        ledger.batches[name] = {"endpoint": endpoint.label, "base_url": endpoint.base_urls[0], "model": endpoint.model,
                                "input_file_id": uploaded.id, "batch_id": None, "status": "uploaded",
                                "keys": [key for key, _, _ in chunk], "reserved": reserved}
        ledger.save()
        batch = await api.batches.create(input_file_id=uploaded.id, endpoint=batch_path(endpoint),
                                         completion_window="24h", metadata={"lema_batch": name})
    ledger.batches[name].update(batch_id=batch.id, status=batch.status)
    for key, _, _ in chunk:
        ledger.tries[key] = ledger.tries.get(key, 0) + 1
    ledger.save()
    if client.budget is not None:
        client.budget.commit(reserved)


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
        for key in entry["keys"]:
            ledger.tries[key] = ledger.tries.get(key, 0) + 1
        ledger.save()


async def _poll(client, ledger: Ledger, name: str, endpoints: dict[str, Endpoint], parse) -> None:
    """Look at one batch; when it is over, download its answers and errors into the ledger."""
    entry = ledger.batches[name]
    endpoint = next((endpoints[k] for k in entry["keys"] if k in endpoints), None)
    if endpoint is None or not entry.get("batch_id"):
        return
    async with _api(endpoint) as api:
        batch = await api.batches.retrieve(entry["batch_id"])
        entry["status"] = batch.status
        if batch.status not in DONE:
            ledger.save()
            return
        rows: dict[str, dict] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = await api.files.content(file_id)
                for line in content.content.splitlines():
                    if line.strip():
                        row = _result(json.loads(line), endpoint, parse)
                        rows[row["key"]] = row
    usage = client.usage_for(endpoint)
    reason = f"batch {batch.status}"
    if batch.status == "failed" and getattr(batch, "errors", None) and batch.errors.data:
        reason += ": " + "; ".join(str(e.message) for e in batch.errors.data[:3])
    for key in entry["keys"]:
        row = rows.setdefault(key, {"key": key, "error": reason})
        usage.requests += 1
        if "error" in row:
            usage.failures += 1
        else:
            usage.add_tokens(row["prompt_tokens"], row["completion_tokens"],
                             _half(endpoint.price_prompt), _half(endpoint.price_completion))
    ledger.add_results(list(rows.values()))
    entry["collected"] = True
    ledger.save()


def _half(price: float | None) -> float | None:
    return None if price is None else price * BATCH_DISCOUNT


def _result(row: dict, endpoint: Endpoint, parse) -> dict:
    """One output or error line as a ledger result: the answer, or why there is none."""
    key = row.get("custom_id")
    response = row.get("response") or {}
    if row.get("error") or response.get("status_code") != 200:
        error = row.get("error") or ((response.get("body") or {}).get("error")) or {}
        message = error.get("message") if isinstance(error, dict) else str(error)
        status = response.get("status_code")
        return {"key": key, "error": f"{'HTTP ' + str(status) + ': ' if status else ''}{message or 'no answer'}"}
    try:
        completion: Completion = parse(json.dumps(response.get("body")).encode("utf-8"), endpoint)
    except ValueError as exc:
        return {"key": key, "error": str(exc)}
    return {"key": key, "text": completion.text, "finish_reason": completion.finish_reason,
            "prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens}
