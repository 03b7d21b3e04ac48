"""Check an endpoint before the first paid request: it answers, the key is accepted, the model
is served.

A run that starts against a dead server, a wrong port, a refused key or a misspelt model name
would otherwise spend its retries (and, on a paid API, its money) on every request before
anything says so. One GET of `/models` per base URL tells all three: no answer is a dead
endpoint, 401/403 a refused key, and a list of model ids that lacks ours a wrong name. A 404
where `URL/v1/models` answers is a URL missing its `/v1` (every request would fail with 404): the
check names the `/v1` form. A server that offers no `/models` (404, a body that is no model list)
or lists nothing is taken at its word: the first requests will tell.

Each endpoint is checked once per process. `transformers serve` lists the hub
cache, not a model it loads from a folder, so such a model (the embedded one behind `lema serve`,
a local path) is not required to be listed.
"""
from __future__ import annotations

import os

import openai

from ..errors import EndpointError
from ..keys import key_for, scrub
from .types import Endpoint

PROBE_TIMEOUT = 15.0  # seconds: a GET of a short list
_checked: set[tuple] = set()


def _key(endpoint: Endpoint, base_url: str) -> tuple:
    return (base_url, endpoint.model, endpoint.api_key_env)


def is_checked(endpoint: Endpoint) -> bool:
    return all(_key(endpoint, url) in _checked for url in endpoint.base_urls)


async def check_endpoint(endpoint: Endpoint, role: str = "model", timeout: float = PROBE_TIMEOUT) -> None:
    """Raise EndpointError (one line: role, label, URL and what is wrong) unless every base URL of
    `endpoint` answers, accepts the key and, where it lists its models, lists this one."""
    api_key = key_for(endpoint)  # an unset key_env variable is refused here, before anything is sent
    for url in endpoint.base_urls:
        if _key(endpoint, url) in _checked:
            continue
        where = f"{role} {endpoint.label} at {url}"
        client = openai.AsyncOpenAI(base_url=url, api_key=api_key, max_retries=0, timeout=timeout)
        try:
            page = await client.models.list()
            served = [getattr(m, "id", None) for m in getattr(page, "data", None) or []]
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            hint = f" (from ${endpoint.api_key_env})" if endpoint.api_key_env else \
                " (no key_env set, so none was sent: name the variable that holds it with key_env)"
            raise EndpointError(f"{where}: the key was refused{hint}: HTTP {exc.status_code}") from None
        except openai.APIConnectionError as exc:
            root = exc.__cause__ or exc.__context__ or exc
            reason = "no answer within {:g} s".format(timeout) if isinstance(exc, openai.APITimeoutError) \
                else scrub(f"{type(root).__name__}: {root}")
            raise EndpointError(f"{where} does not answer ({reason}); nothing was requested") from None
        except openai.NotFoundError:
            served = []  # no /models here: the first requests will tell, unless the API sits under /v1
            better = await _answers_under_v1(url, api_key, timeout)
            if better:
                raise EndpointError(f"{where}: no OpenAI-compatible API at this URL (GET {url.rstrip('/')}/models: "
                                    f"HTTP 404), but {better} answers: use {endpoint.model}@{better}; nothing was "
                                    "requested") from None
        except (openai.APIStatusError, ValueError, TypeError, AttributeError):
            served = []  # no usable /models here: the first requests will tell
        finally:
            await client.close()
        served = [name for name in served if isinstance(name, str)]
        if served and endpoint.model not in served and not _served_from_disk(endpoint.model):
            shown = ", ".join(served[:8]) + (f" and {len(served) - 8} more" if len(served) > 8 else "")
            raise EndpointError(f"{where}: model {endpoint.model!r} is not served there (it serves: {shown}); "
                                "nothing was requested")
        _checked.add(_key(endpoint, url))


async def _answers_under_v1(url: str, api_key: str, timeout: float) -> str | None:
    """`URL/v1` when the URL lacks the `/v1` every OpenAI-compatible server puts its API under
    and `URL/v1/models` answers there (vLLM, TGI, llama.cpp, `transformers serve`); else None."""
    if url.rstrip("/").endswith("/v1"):
        return None
    better = url.rstrip("/") + "/v1"
    client = openai.AsyncOpenAI(base_url=better, api_key=api_key, max_retries=0, timeout=timeout)
    try:
        await client.models.list()
    except (openai.AuthenticationError, openai.PermissionDeniedError):
        return better  # it is there, and refuses the key: the check of the right URL will say so
    except (openai.APIError, ValueError, TypeError, AttributeError):
        return None
    finally:
        await client.close()
    return better


def _served_from_disk(model: str) -> bool:
    """A model a server loads from a folder (`lema serve`'s embedded model, a local path), which
    `transformers serve` does not list: its `/models` is the hub cache."""
    from .embedded import served_model_name

    return model == served_model_name() or os.path.isdir(model)


def start_line(endpoint: Endpoint, role: str) -> str:
    """`generator llama2-7b -> http://gpu1:8000/v1 (completion)`: where a stage's requests go."""
    name = endpoint.label if endpoint.label == endpoint.model else f"{endpoint.label} ({endpoint.model})"
    return f"{role} {name} -> {', '.join(endpoint.base_urls)} ({endpoint.mode})"
