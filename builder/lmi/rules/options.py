"""Option keys: the per-version key catalogue, pass-through, aliases, and keys the recipe owns elsewhere
(reference/lmi-runtime.md §6, §8, §17.1, §18)."""

from __future__ import annotations

import difflib
import re

from builder.lmi.keys import OWNED_BY_MODEL, derived_keys, key_modes, known_keys, releases_reading
from builder.lmi.properties import KEY_RE
from builder.lmi.resolve import env_name
from builder.lmi.rules.base import Ctx, check, rule
from builder.lmi.rules.files import ENV_NAME, ENV_NAME_RE
from builder.secrets import SECRET_NAME_RE as SECRET_RE  # one rule for validate and bake

UNKNOWN_OPTION = rule("unknown-option", "every option key is one the release reads with this backend/handler "
                      "(derived per LMI release: builder/catalog/keys/; LMI would silently drop any other)", "fix the spelling (did you mean ...), or list the key in "
                      "serving.pass_through if your runtime really reads it", "§17.1, §18, lmi-releases §2")
OPTION_KEY_SYNTAX = rule("option-key-syntax", "option keys are letters, digits, '_', '.', '-'",
                         "rename the key", "§10.2")
OWNED = rule("option-owned-by-model", "model_id, revision and trust_remote_code come from the model: section",
             "move the value to model.id/s3/path, model.revision or model.trust_remote_code", "seed guide")
PASS_UNUSED = rule("pass-through-unused", "a serving.pass_through entry names no option (warning)",
                   "remove the entry or add the option", "")
ALIAS = rule("alias-conflict", "LMI rejects two names of one setting with different values "
             "(tensor_parallel_degree/size, pipeline_parallel_degree/size, max_rolling_batch_size/max_num_seqs)",
             "keep one of the two names", "§8.1")
ENV_SECRET = rule("env-secret", "secrets (tokens, passwords, keys) never go into env: (it is baked into the image)",
                  "remove it; pass HF_TOKEN in the environment of lmi-build instead", "§18, DESIGN")
ENV_CONFIG = rule("env-config-key", "OPTION_*/SERVING_*/HF_MODEL_* in env: would be a second source of the "
                  "configuration that serving.properties already holds", "move it under serving: (or model:)",
                  "§10, §18")

OPTION_SECRET = rule("option-secret", "a secret-named option (hf_token, api_key, password, ...) is refused, with "
                     "or without pass_through: serving.properties is baked into the image and recorded in its "
                     "labels and resolved.json", "remove it; pass HF_TOKEN in the environment of lmi-build (and "
                     "the endpoint's environment at deploy time)", "§18, DESIGN")
ENV_COLLISION = rule("env-name-collision", "two option keys that LMI's environment form reads from one variable "
                     "(my.key, my_key and my-key are all OPTION_MY_KEY)", "keep one spelling", "§10.2")

# Words that make an option key a secret. 'token' only as the last word and not a tokenizer special
# token (bos_token, ...): max_num_batched_tokens and friends are ordinary options.
_SECRET_WORDS = {"password", "passwd", "secret", "credential", "credentials", "apikey"}
_SECRET_PAIRS = {("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key"), ("auth", "token"),
                 ("access", "token"), ("hf", "token"), ("bearer", "token")}
_SPECIAL_TOKENS = {"bos", "eos", "pad", "unk", "sep", "cls", "mask"}


def is_secret_option(key: str) -> bool:
    words = [w for w in key.lower().replace(".", "_").replace("-", "_").split("_") if w]
    if not words:
        return False
    if _SECRET_WORDS.intersection(words) or any(pair in _SECRET_PAIRS for pair in zip(words, words[1:], strict=False)):
        return True
    return words[-1] == "token" and (len(words) == 1 or words[-2] not in _SPECIAL_TOKENS)


ALIASES = (("tensor_parallel_degree", "tensor_parallel_size"), ("pipeline_parallel_degree", "pipeline_parallel_size"),
           ("max_rolling_batch_size", "max_num_seqs"))


def _lmi_name(version: str) -> str:
    """'lmi-27.0.0' -> 'LMI v27' (how LMI's own docs name a release)."""
    number = version.split("-", 1)[1].split(".")[0] if version.startswith("lmi-") else ""
    return f"LMI v{number}" if number.isdigit() else f"LMI {version}"


def _dropped_message(ctx: Ctx, key: str, known: frozenset[str], entry_point: str | None) -> str:
    """Why LMI would not read ``key``: from the release's derived key data where there is some."""
    rel = ctx.release
    assert rel is not None
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
    hint = f"did you mean '{close[0]}'? " if close else ""
    derived = derived_keys(rel)
    if derived is None:
        return (f"unknown option '{key}' for rolling_batch '{ctx.rolling_batch}' in {rel.family} {rel.version} "
                f"(LMI would silently ignore it); {hint}if the runtime does read it, add '{key}' to "
                "serving.pass_through")
    modes = key_modes(rel, ctx.rolling_batch, entry_point)
    name = _lmi_name(rel.version) if rel.family == "lmi" else rel.label
    where = "the async service" if modes == ["async"] else f"rolling_batch '{ctx.rolling_batch}'"
    readers = [r for r in releases_reading(rel.family, key) if r != rel.version]
    listed = ", ".join(readers) if len(readers) <= 3 else f"{len(readers)} releases from {readers[0]} to {readers[-1]}"
    elsewhere = f" ({listed} read it)" if readers else ""
    custom = f"only a custom handler would read it (then list '{key}' in serving.pass_through)"
    vllm = any("engine_args" in derived.modes[m] for m in modes)
    if vllm and derived.engine_args is not None:
        public = (derived.vllm_version or "?").split("+", 1)[0]
        minor = ".".join(public.split(".")[:2])
        return (f"{name} passes extra keys to vLLM {minor} only when EngineArgs has them; '{key}' is not one "
                f"(nor a field of LMI's properties classes for {where}){elsewhere}; LMI would drop it without a "
                f"word; {hint}{custom}")
    if vllm and derived.engine_args_unknown:
        return (f"unknown option '{key}' for {where} in {name}: its bundled vLLM "
                f"{derived.vllm_version} is a dev build whose EngineArgs are not in the catalog "
                f"({derived.path.name}: engine_args unknown){elsewhere}; {hint}if vLLM {derived.vllm_version} "
                f"does read it, add '{key}' to serving.pass_through")
    return (f"{name} does not read '{key}' with {where} (no field of its properties classes, no read in "
            f"its handler){elsewhere}; LMI would drop it without a word; {hint}{custom}")


def check_option_secrets(ctx: Ctx) -> None:
    """Runs for every recipe (the release need not be known): a secret must not be baked whatever else is wrong."""
    seen: dict[str, str] = {}
    for key in ctx.opts:
        if is_secret_option(key):
            ctx.error(ctx.opt_path(key), OPTION_SECRET, f"option '{key}' looks like a secret and serving.option is "
                      "baked into serving.properties, the image's labels and resolved.json (pass_through does not "
                      "change that); remove it and pass the value in the environment at run time "
                      "(HF_TOKEN is read from lmi-build's own environment and never baked)", key=True)
            continue
        if not KEY_RE.match(key):
            continue
        name = env_name("option." + key)
        if name in seen:
            ctx.error(ctx.opt_path(key), ENV_COLLISION, f"option '{key}' and '{seen[name]}' are both read from "
                      f"{name} in LMI's environment form; LMI would see one value; keep one spelling", key=True)
        else:
            seen[name] = key


@check("env")
def check_env(ctx: Ctx) -> None:
    check_option_secrets(ctx)
    # smoke.env is not baked as ENV, but it is recorded in the image's labels (smoke settings and the
    # resolved recipe) and the build record, so a secret there would be published with the image.
    for key in ctx.recipe.smoke.env:
        if SECRET_RE.search(key):
            ctx.error(("smoke", "env", key), ENV_SECRET, f"smoke.env '{key}' looks like a secret and smoke.env is "
                      "recorded in the image's labels and the build record; remove it (lmi-build smoke --env "
                      "passes a value to one smoke run without recording it)", key=True)
    for key in ctx.recipe.env:
        path = ("env", key)
        if SECRET_RE.search(key):
            ctx.error(path, ENV_SECRET, f"env '{key}' looks like a secret and env: is baked into the image; remove "
                      "it (HF_TOKEN is read from lmi-build's own environment and never baked)", key=True)
        elif key.startswith(("OPTION_", "SERVING_", "HF_MODEL_")) or key in ("TENSOR_PARALLEL_DEGREE",
                                                                            "PIPELINE_PARALLEL_DEGREE"):
            ctx.error(path, ENV_CONFIG, f"env '{key}' would configure LMI beside serving.properties (which wins "
                      "for option keys, §10.5); set it under serving: / model: instead", key=True)


ENV_VALUE = rule("env-value-characters", "env: and smoke.env values hold no control or Unicode line-break "
                 "characters (C0/C1 controls, U+2028, U+2029): the legacy builder's ENV/LABEL parsing turns U+0085 "
                 "into a space, and env files split on them", "write the value without them", "issue 15 item 4")
# C0 controls but tab, DEL, C1 controls (U+0085 NEL among them), and the Unicode line/paragraph separators
_ENV_VALUE_BAD = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


@check("env-names")
def check_env_names(ctx: Ctx) -> None:
    for section, env in ((("env",), ctx.recipe.env), (("smoke", "env"), ctx.recipe.smoke.env)):
        for key, value in env.items():
            bad = _ENV_VALUE_BAD.search(str(value))
            if bad and ENV_NAME_RE.match(key):
                ctx.error((*section, key), ENV_VALUE, f"{'.'.join(section)} {key}: the value holds "
                          f"U+{ord(bad.group()):04X} at position {bad.start()}; Docker's legacy builder and "
                          "env files would not keep it as written: remove it")
            if not ENV_NAME_RE.match(key):
                where = ".".join(section)
                ctx.error((*section, key), ENV_NAME, f"{where} name {key!r} is not an environment variable name "
                          "(letters, digits and '_', not starting with a digit); docker and the shell would "
                          "refuse or misread it: rename it", key=True)


@check("option-keys", needs=("rolling_batch_ok",))
def check_keys(ctx: Ctx) -> None:
    assert ctx.release
    entry_point = ctx.derived.entry_point
    known = known_keys(ctx.release, ctx.rolling_batch, entry_point)
    passed = set(ctx.recipe.serving.pass_through)
    for key in ctx.opts:
        path = ctx.opt_path(key)
        if not KEY_RE.match(key):
            ctx.error(path, OPTION_KEY_SYNTAX, f"option key '{key}' may only hold letters, digits, '_', '.', '-'",
                      key=True)
            continue
        if key.startswith("option."):
            ctx.error(path, UNKNOWN_OPTION, f"write '{key[len('option.'):]}' under serving.option (without the "
                      "'option.' prefix)", key=True)
            continue
        if key in OWNED_BY_MODEL:
            ctx.error(path, OWNED, f"option.{key} is set from the model: section; write it as "
                      f"{OWNED_BY_MODEL[key]} and remove it here", key=True)
            continue
        if key == "engine" or key in known or key in passed:
            continue
        ctx.error(path, UNKNOWN_OPTION, _dropped_message(ctx, key, known, entry_point), key=True)
    for i, name in enumerate(ctx.recipe.serving.pass_through):
        if name not in ctx.opts:
            ctx.warning(("serving", "pass_through", i), PASS_UNUSED,
                        f"pass_through lists '{name}' but serving.option has no such key; remove the entry")


@check("option-aliases", needs=("rolling_batch_ok",))
def check_aliases(ctx: Ctx) -> None:
    for a, b in ALIASES:
        if a in ctx.opts and b in ctx.opts and str(ctx.opts[a]).lower() != str(ctx.opts[b]).lower():
            ctx.error(ctx.opt_path(b), ALIAS, f"{a}={ctx.opts[a]} and its alias {b}={ctx.opts[b]} disagree; LMI "
                      f"refuses this at start-up; keep only {a}", key=True)
