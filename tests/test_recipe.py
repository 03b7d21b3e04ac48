"""Recipes validate before anything runs, with errors that name the key."""
import pytest

from lema_plugin.recipe import RecipeError, builtin_recipes, load_recipe


def test_builtin_recipes_validate(monkeypatch):
    for var in ("LEMA_GEN_URL_7B", "LEMA_GEN_URL_13B", "LEMA_GEN_URL_70B"):
        monkeypatch.setenv(var, "http://127.0.0.1:9/v1")
    assert {"demo", "gsm8k-paper", "math-paper"} <= set(builtin_recipes())
    for name in builtin_recipes():
        recipe = load_recipe(name)
        assert recipe.generators and recipe.corrector
    paper = load_recipe("math-paper")
    assert paper.dataset == "math" and paper.corrector.key_env == "OPENAI_API_KEY"
    endpoint = paper.generators[0].endpoint()
    assert (endpoint.label, endpoint.model, endpoint.base_urls, endpoint.mode) == (
        "llama2-7b", "meta-llama/Llama-2-7b-hf", ("http://127.0.0.1:9/v1",), "completion")


@pytest.mark.parametrize(
    "text, message",
    [
        ("generators: [{model: m}]\ncorector: {model: x}\n", "corector: unknown key; did you mean 'corrector'?"),
        ("generators: [{model: m, samples: 0}]\n", "generators.0.samples: Input should be greater than or equal to 1"),
        ("generators: []\n", "generators: List should have at least 1 item"),
        ("dataset: svamp\ngenerators: [{model: m}]\n", "dataset: Input should be 'gsm8k', 'math' or 'math500'"),
        ("generators: [{model: m, base_url: '${LEMA_TEST_UNSET_VAR}'}]\n", "environment variable(s) not set: LEMA_TEST_UNSET_VAR (for generators.0.base_url)"),
        ("generators: [{model: m}]\ncot: {source: model}\n", "cot: source 'model' needs a 'model' endpoint"),
        ("generators: [\n", "not valid YAML"),
        ("generators: [{model: m}]\nlimit: 5\nlimit: 50\n", ":3: not valid YAML (key 'limit' given twice, first on line 2)"),
        ("generators:\n  - model: m\n    temperature: 0.2\n    samples: 2\n    temperature: 1.0\n",
         ":5: not valid YAML (key 'temperature' given twice, first on line 3)"),
        ("generators: [{model: m}]\ncorrector: {model: a, model: b}\n", ":2: not valid YAML (key 'model' given twice"),
        ("generators: [{model: m}]\n\xe9t\xe9: 1\n", None),
    ],
)
def test_bad_recipe_names_key(tmp_path, text, message):
    path = tmp_path / "r.yaml"
    if message is None:  # not UTF-8: Latin-1 bytes
        path.write_bytes(text.encode("latin-1"))
        message = ":2: not valid UTF-8"
    else:
        path.write_text(text)
    with pytest.raises(RecipeError) as err:
        load_recipe(str(path))
    assert str(err.value).startswith(f"{path}")
    assert message in str(err.value)


def test_env_default_is_used(tmp_path, monkeypatch):
    monkeypatch.delenv("LEMA_TEST_URL", raising=False)
    path = tmp_path / "r.yaml"
    path.write_text("generators: [{model: m, base_url: '${LEMA_TEST_URL:-http://h:1/v1}'}]\n")
    assert load_recipe(str(path)).generators[0].base_url == "http://h:1/v1"
    monkeypatch.setenv("LEMA_TEST_URL", "http://x:2/v1")
    assert load_recipe(str(path)).generators[0].base_url == "http://x:2/v1"


def test_unknown_recipe_name_lists_builtins():
    with pytest.raises(RecipeError, match="not a built-in recipe.*demo"):
        load_recipe("no-such-recipe")



def test_every_problem_is_reported_at_once_with_suggestions(tmp_path, monkeypatch):
    """A misspelt key gets the nearest real key, and every unset variable is named in one run."""
    for var in ("LEMA_TEST_URL_A", "LEMA_TEST_URL_B", "LEMA_TEST_KEY"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "r.yaml"
    path.write_text(
        "generators:\n"
        "  - {model: a, base_url: '${LEMA_TEST_URL_A}', temprature: 0.5}\n"
        "  - {model: b, base_url: '${LEMA_TEST_URL_B}'}\n"
        "corrector: {model: c, key_env: '${LEMA_TEST_KEY}', keep: 0, api_key_evn: X}\n"
        "expor: {format: alpaca}\n"
    )
    with pytest.raises(RecipeError) as err:
        load_recipe(str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: 5 problems: ") and "\n" not in message
    assert "environment variable(s) not set: LEMA_TEST_URL_A, LEMA_TEST_URL_B, LEMA_TEST_KEY" in message
    assert "generators.0.temprature: unknown key; did you mean 'temperature'?" in message
    assert "corrector.api_key_evn: unknown key; did you mean 'key_env'?" in message  # the new name, not the old one
    assert "corrector.keep: Input should be greater than or equal to 1" in message
    assert "expor: unknown key; did you mean 'export'?" in message


def test_recipe_keys_are_the_spec_keys_and_old_spellings_still_work(tmp_path, caplog):
    path = tmp_path / "r.yaml"
    path.write_text("generators: [{model: m, base_url: 'http://h:1/v1', key_env: MY_KEY, price: 2.5/10, concurrency: 3}]\n")
    endpoint = load_recipe(str(path)).generators[0].endpoint()
    assert (endpoint.api_key_env, endpoint.price_prompt, endpoint.price_completion, endpoint.max_concurrency) == (
        "MY_KEY", 2.5, 10.0, 3)

    path.write_text("generators: [{model: m, api_key_env: MY_KEY, price_prompt: 1, price_completion: 2}]\n"
                    "corrector: {attempts: 3, prompt: zeroshot}\nevolve: {answers: 7}\n")
    recipe = load_recipe(str(path))
    assert recipe.generators[0].key_env == "MY_KEY" and recipe.generators[0].price == "1/2"
    assert (recipe.corrector.samples, recipe.corrector.style, recipe.evolve.samples) == (3, "zeroshot", 7)
    assert "recipe key 'attempts' is now 'samples'" in caplog.text

    path.write_text("generators: [{model: m}]\ncorrector: {attempts: 3, samples: 2}\n")
    with pytest.raises(RecipeError, match="'attempts' is the old name of 'samples'"):
        load_recipe(str(path))
    path.write_text("generators: [{model: m, price: 'ten'}]\n")
    with pytest.raises(RecipeError, match="generators.0.price: .*expected 'IN/OUT'"):
        load_recipe(str(path))
