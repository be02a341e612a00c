"""builder.engine against fake low-level clients: the one in-band error check (every shape the engine
sends), the one build reader, the push's local name, and the credentials a pull or push sends when the
caller has none (builder.credentials, never the SDK's untimed config read)."""

from __future__ import annotations

import base64
import json

import docker.errors
import pytest

from builder import engine
from builder.diagnostics import BuilderError
from builder.engine import EngineEventError, check_event

ID = "sha256:" + "b" * 64


@pytest.mark.parametrize("event,detail", [
    ({"error": "boom"}, "boom"),
    ({"errorDetail": {"message": "from detail"}}, "from detail"),
    ({"error": "plain", "errorDetail": {"message": "detailed"}}, "detailed"),
    ({"error": "plain", "errorDetail": {}}, "plain"),
    ({"errorDetail": {"code": 1}}, "unknown error (the engine sent no message)"),
    ({"errorDetail": "a bare string"}, "a bare string"),
    ({"error": None, "errorDetail": None}, "unknown error (the engine sent no message)"),
])
def test_every_in_band_error_shape_raises(event, detail):
    with pytest.raises(EngineEventError) as info:
        check_event(event, "pulling image x", stage="bake", tail="Step 1/2 : FROM y\n", hint="log in")
    err = info.value
    assert isinstance(err, BuilderError) and err.detail == detail and err.stage == "bake" and err.hint == "log in"
    assert str(err).startswith(f"pulling image x failed: {detail}") and str(err).endswith("Step 1/2 : FROM y")


@pytest.mark.parametrize("event", [{"status": "Pushed", "id": "l"}, {"stream": "error in a log line\n"},
                                   {"aux": {"ID": ID}}, {}])
def test_other_events_pass_unchanged(event):
    assert check_event(event, "x", stage=None) is event


class _BuildAPI:
    def __init__(self, events, *, tagged: str | None = None, raises: Exception | None = None):
        self.events, self.tagged, self.raises = events, tagged, raises
        self.kwargs: dict = {}
        self.sent = b""

    def build(self, **kwargs):
        self.kwargs = kwargs
        if self.raises:
            raise self.raises
        self.sent = b"".join(kwargs["fileobj"])  # the engine reads the whole context first
        return iter(self.events)

    def inspect_image(self, ref):
        if self.tagged is None:
            raise docker.errors.ImageNotFound("no such image")
        return {"Id": self.tagged}


class _Client:
    def __init__(self, api):
        self.api = api


STEPS = [{"stream": "Step 1/3 : FROM base\n"}, {"stream": " ---> 111111111111\n"},
         {"stream": "Step 2/3 : COPY a /a\n"}, {"stream": " ---> Using cache\n"}, {"stream": " ---> 222222222222\n"},
         {"stream": "Step 3/3 : LABEL x=y\n"}, {"stream": " ---> 333333333333\n"}]


def test_build_returns_the_aux_id_counts_steps_and_what_it_made():
    api = _BuildAPI([*STEPS, {"aux": {"ID": ID}}])
    made: list[str] = []
    out = engine.build(_Client(api), engine.tar_context({"Dockerfile": b"FROM base\n"}), what="the model image",
                       stage="bake", made=made)
    assert out.image_id == ID and out.steps == 3 and out.cached_steps == 1 and made == ["333333333333"]
    assert out.bytes_sent == len(api.sent) > 0 and api.kwargs["labels"] is None and api.kwargs["pull"] is False


def test_build_in_band_error_names_the_image_and_quotes_the_output():
    api = _BuildAPI([*STEPS[:3], {"errorDetail": {"message": "COPY failed: no such file a"}, "error": "COPY failed"}])
    with pytest.raises(BuilderError, match=r"docker build of the model image failed: COPY failed: no such file a\n"
                                           r"Step 1/3 : FROM base") as info:
        engine.build(_Client(api), iter([b"ctx"]), what="the model image", stage="bake")
    assert info.value.stage == "bake"


def test_build_without_an_image_id_or_with_another_tag_is_an_error():
    with pytest.raises(BuilderError, match="ended without an image id"):
        engine.build(_Client(_BuildAPI(STEPS)), iter([b"ctx"]), what="x", stage="runtime")
    with pytest.raises(BuilderError, match="ended without tagging an image as r:t"):
        engine.build(_Client(_BuildAPI([{"aux": {"ID": ID}}], tagged="sha256:" + "c" * 64)), iter([b"c"]),
                     what="r:t", stage="runtime", tag="r:t")
    tagged = engine.build(_Client(_BuildAPI(STEPS, tagged=ID)), iter([b"c"]), what="r:t", stage="runtime", tag="r:t")
    assert tagged.image_id == ID  # an engine without aux: the tag names the image


def test_build_sdk_errors_become_builder_errors():
    api = _BuildAPI([], raises=docker.errors.APIError("500 Server Error: engine is gone"))
    with pytest.raises(BuilderError, match="docker build of r:t failed: 500 Server Error"):
        engine.build(_Client(api), iter([b"c"]), what="r:t", stage="runtime")


class _NameAPI:
    """Images by name for ``pushed_name``."""

    def __init__(self, names: dict[str, str]):
        self.names = dict(names)

    def inspect_image(self, ref):
        if ref in self.names:
            return {"Id": self.names[ref], "RepoTags": [n for n, i in self.names.items() if i == self.names[ref]]}
        if ref in self.names.values():
            return {"Id": ref, "RepoTags": [n for n, i in self.names.items() if i == ref]}
        raise docker.errors.ImageNotFound("no such image")

    def tag(self, image, repository, tag, force=False):
        self.names[f"{repository}:{tag}"] = image

    def remove_image(self, ref, noprune=False):
        del self.names[ref]


def test_pushed_name_is_made_for_the_push_and_removed_after():
    api = _NameAPI({"mine:1": ID})
    with engine.pushed_name(_Client(api), ID, "127.0.0.1:5000/r", "t"):
        assert api.names["127.0.0.1:5000/r:t"] == ID
    assert api.names == {"mine:1": ID}


def test_pushed_name_puts_a_users_name_back():
    other = "sha256:" + "d" * 64
    api = _NameAPI({"mine:1": ID, "127.0.0.1:5000/r:t": other})
    with engine.pushed_name(_Client(api), ID, "127.0.0.1:5000/r", "t"):
        assert api.names["127.0.0.1:5000/r:t"] == ID
    assert api.names["127.0.0.1:5000/r:t"] == other


class _PullAPI:
    def __init__(self):
        self.auth = "unset"

    def pull(self, repository, tag, stream, decode, auth_config="unset"):
        self.auth = auth_config
        return iter([{"status": "Downloaded newer image"}])


def _config(tmp_path, monkeypatch, doc: dict) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps(doc))


def test_a_pull_without_auth_sends_the_configured_credentials(tmp_path, monkeypatch):
    raw = base64.b64encode(b"erin:pw-SECRET").decode()
    _config(tmp_path, monkeypatch, {"auths": {"reg.example.com": {"auth": raw}}})
    api = _PullAPI()
    engine.pull(_Client(api), "reg.example.com/base", "1", what="base image", stage="bake")
    assert api.auth == {"username": "erin", "password": "pw-SECRET"}


def test_a_pull_with_nothing_configured_is_anonymous_not_the_sdks_own_lookup(tmp_path, monkeypatch):
    # None would make docker-py read the config and run the helper itself, without a timeout
    _config(tmp_path, monkeypatch, {"credsStore": "not-installed-anywhere"})
    api = _PullAPI()
    engine.pull(_Client(api), "reg.example.com/base", "1", what="base image", stage="bake")
    assert api.auth == {}


def test_a_hub_name_is_looked_up_as_docker_io(tmp_path, monkeypatch):
    raw = base64.b64encode(b"hub:pw").decode()
    _config(tmp_path, monkeypatch, {"auths": {"https://index.docker.io/v1/": {"auth": raw}}})
    api = _PullAPI()
    engine.pull(_Client(api), "library/debian", "bookworm", what="base image", stage="bake")
    assert api.auth == {"username": "hub", "password": "pw"}


def test_an_identity_token_goes_to_the_engine_as_identitytoken():
    from pydantic import SecretStr

    from builder.credentials import Credentials

    assert Credentials(username="<token>", password=SecretStr("t0k")).auth_config() == {"identitytoken": "t0k"}


def test_progress_off_a_terminal_draws_nothing():
    with engine.Progress() as bars:
        bars.update("x", description="sending", completed=5, total=10)
        assert not bars.shown and bars.tasks == {}


class _ImportAPI(_BuildAPI):
    def __init__(self, answer: str, *, tagged: str | None = None):
        super().__init__([], tagged=tagged)
        self.answer = answer

    def import_image(self, src, repository, tag, changes, stream_src):
        self.kwargs = {"repository": repository, "tag": tag, "changes": changes}
        self.sent = b"".join(src)
        return self.answer


def test_import_checks_every_answer_line():
    ok = _ImportAPI('{"status":"sha256:' + "b" * 64 + '"}\r\n', tagged=ID)
    assert engine.import_image(_Client(ok), iter([b"tar"]), "lmi-build/rootfs:abc", changes=["CMD [\"x\"]"],
                               stage="runtime") == ID
    assert ok.kwargs["repository"] == "lmi-build/rootfs" and ok.kwargs["tag"] == "abc" and ok.sent == b"tar"
    bad = _ImportAPI('{"status":"Importing"}\n{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}\n')
    with pytest.raises(BuilderError, match="docker import of r:t failed: unexpected EOF"):
        engine.import_image(_Client(bad), iter([b"tar"]), "r:t", changes=[], stage="runtime")
    with pytest.raises(BuilderError, match="docker import did not produce r:t"):
        engine.import_image(_Client(_ImportAPI("{}")), iter([b"tar"]), "r:t", changes=[], stage="runtime")


def test_a_broken_docker_config_is_named_not_blamed_on_the_engine(tmp_path, monkeypatch):
    """docker-py reads config.json while it makes the client; a bad auth entry raised a bare ValueError that
    read as 'no Docker engine reachable: not enough values to unpack'."""
    import pytest

    from builder.diagnostics import BuilderError
    from builder.engine import client as engine_client

    (tmp_path / "config.json").write_text('{"auths": {"x.io": {"auth": "%%%"}}}')
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))

    def sdk_fails(timeout):
        raise ValueError("not enough values to unpack (expected 2, got 1)")

    monkeypatch.setattr(engine_client, "_from_env", sdk_fails)
    with pytest.raises(BuilderError) as err:
        engine_client.docker_client("bake")
    assert str(tmp_path / "config.json") in str(err.value) and "x.io" in str(err.value)
    assert err.value.stage == "bake" and "docker login x.io" in (err.value.hint or "")
    (tmp_path / "config.json").write_text("{}")  # a good config: the engine is what failed
    with pytest.raises(BuilderError, match="no Docker engine reachable"):
        engine_client.docker_client("bake")
