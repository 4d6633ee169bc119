"""A thin typed wrapper over the `elasticsearch` 8.x client for ILM policies, templates and data streams.

The 8.x client talks to 8.x and 9.x servers (a 9.x client sends `compatible-with=9`, which 8.x
servers refuse). Every call is counted (`requests`) so a plan can report what it cost, and every
failure becomes one of the project's errors: 401/403 and an unreachable cluster exit 2, a 400
validation error keeps Elasticsearch's `error.type` and `reason` and exits 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sre.errors import CheckFailed, UnreachableError
from sre.telemetry import register_secret

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from sre.config import ElasticsearchEndpoint

T = TypeVar("T")


class ElasticsearchRequestError(CheckFailed):
    """Elasticsearch refused a request body (400 and other 4xx): its error type and reason, exit 1."""

    def __init__(self, what: str, status: int, error_type: str, reason: str) -> None:
        super().__init__(f"{what}: Elasticsearch answered {status} {error_type}: {reason}")
        self.status = status
        self.error_type = error_type
        self.reason = reason


def _error_parts(body: Any, fallback: str) -> tuple[str, str]:
    """(type, reason) of an Elasticsearch error body, with the deepest cause appended when it adds detail."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        etype, reason = str(err.get("type", "error")), str(err.get("reason", ""))
        cause = err.get("caused_by")
        while isinstance(cause, dict) and isinstance(cause.get("caused_by"), dict):
            cause = cause["caused_by"]
        if isinstance(cause, dict) and cause.get("reason") and cause["reason"] not in reason:
            reason = f"{reason} (caused by {cause.get('type')}: {cause['reason']})"
        return etype, reason
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"], str(body.get("reason", ""))
    return "error", fallback


class ElasticsearchAdapter:
    def __init__(self, client: Elasticsearch, url: str) -> None:
        self.client = client
        self.url = url
        self.requests = 0

    @classmethod
    def from_endpoint(cls, endpoint: ElasticsearchEndpoint) -> ElasticsearchAdapter:
        from elasticsearch import Elasticsearch


        kwargs: dict[str, Any] = {"request_timeout": endpoint.timeout, "max_retries": 1, "retry_on_timeout": False}
        if endpoint.api_key is not None:
            key = endpoint.api_key.resolve().get_secret_value()
            register_secret(key)
            kwargs["api_key"] = key
        elif endpoint.username is not None:
            if endpoint.password is None:
                from sre.config import ConfigError

                raise ConfigError(["endpoints.elasticsearch: username needs password: {env: ...} or {file: ...}"])
            password = endpoint.password.resolve().get_secret_value()
            register_secret(password)
            kwargs["basic_auth"] = (endpoint.username, password)
        if endpoint.url.startswith("https"):
            kwargs["verify_certs"] = endpoint.verify_certs
            if endpoint.ca_file is not None:
                if not endpoint.ca_file.is_file():
                    from sre.config import ConfigError

                    raise ConfigError([f"endpoints.elasticsearch.ca_file: no such file {endpoint.ca_file}"])
                kwargs["ca_certs"] = str(endpoint.ca_file)
            if not endpoint.verify_certs:
                kwargs["ssl_show_warn"] = False
        return cls(Elasticsearch(endpoint.url, **kwargs), endpoint.url)

    def close(self) -> None:
        self.client.close()

    def _call(self, what: str, fn: Callable[[], T], *, missing_ok: bool = False, per_object: bool = True) -> T | None:
        from elasticsearch import ApiError, NotFoundError, TransportError, UnsupportedProductError

        self.requests += 1
        try:
            return fn()
        except NotFoundError:
            if missing_ok:
                return None
            raise
        except UnsupportedProductError:
            raise UnreachableError(f"{self.url} did not answer as Elasticsearch (no X-Elastic-Product header)") from None
        except ApiError as exc:
            status = exc.meta.status
            etype, reason = _error_parts(exc.body, exc.message)
            if status == 401:
                raise UnreachableError(
                    f"Elasticsearch at {self.url} refused the credentials (401 {etype}): {reason}",
                    hint="check endpoints.elasticsearch api_key (the encoded form) or username/password",
                ) from None
            if status == 403 and per_object:
                # One object's privilege (an index pattern, one action): that object's refusal.
                raise ElasticsearchRequestError(what, status, etype, f"{reason} (the privileges sre needs are "
                                                "listed in docs/elk.md)") from None
            if status == 403:
                raise UnreachableError(
                    f"Elasticsearch at {self.url} denied {what} (403 {etype}): {reason}",
                    hint="the API key needs the manage_ilm and manage_index_templates cluster privileges "
                         "(docs/elk.md)",
                ) from None
            if status >= 500:
                raise UnreachableError(f"{what}: Elasticsearch at {self.url} failed ({status} {etype}): {reason}") \
                    from None
            raise ElasticsearchRequestError(what, status, etype, reason) from None
        except TransportError as exc:
            raise UnreachableError(f"Elasticsearch at {self.url} is unreachable: {exc.message}") from None

    # -- lists: one request per kind ---------------------------------------

    def list_ilm_policies(self) -> dict[str, dict[str, Any]]:
        """GET _ilm/policy: name -> {version, modified_date, policy, in_use_by}."""
        resp = self._call("GET _ilm/policy", lambda: self.client.ilm.get_lifecycle(), per_object=False)
        return dict(resp.body) if resp is not None else {}

    def list_component_templates(self) -> dict[str, dict[str, Any]]:
        """GET _component_template: name -> body as the server returns it."""
        resp = self._call("GET _component_template", lambda: self.client.cluster.get_component_template(), per_object=False)
        items = resp.body.get("component_templates", []) if resp is not None else []
        return {i["name"]: i["component_template"] for i in items}

    def list_index_templates(self) -> dict[str, dict[str, Any]]:
        """GET _index_template: name -> body as the server returns it."""
        resp = self._call("GET _index_template", lambda: self.client.indices.get_index_template(), per_object=False)
        items = resp.body.get("index_templates", []) if resp is not None else []
        return {i["name"]: i["index_template"] for i in items}

    def list_data_streams(self, patterns: list[str]) -> dict[str, dict[str, Any]]:
        """GET _data_stream/<patterns>: wildcard expressions, so nothing missing is an error."""
        expr = ",".join(patterns) or "*"
        resp = self._call(f"GET _data_stream/{expr}", lambda: self.client.indices.get_data_stream(name=expr),
                          missing_ok=True, per_object=False)
        items = resp.body.get("data_streams", []) if resp is not None else []
        return {i["name"]: i for i in items}

    # -- single objects (the per-object strategy, kept for comparison and diagnosis) ---

    def get_ilm_policy(self, name: str) -> dict[str, Any] | None:
        resp = self._call(f"GET _ilm/policy/{name}", lambda: self.client.ilm.get_lifecycle(name=name),
                          missing_ok=True)
        return resp.body.get(name) if resp is not None else None

    def get_component_template(self, name: str) -> dict[str, Any] | None:
        resp = self._call(f"GET _component_template/{name}",
                          lambda: self.client.cluster.get_component_template(name=name), missing_ok=True)
        items = resp.body.get("component_templates", []) if resp is not None else []
        return items[0]["component_template"] if items else None

    def get_index_template(self, name: str) -> dict[str, Any] | None:
        resp = self._call(f"GET _index_template/{name}", lambda: self.client.indices.get_index_template(name=name),
                          missing_ok=True)
        items = resp.body.get("index_templates", []) if resp is not None else []
        return items[0]["index_template"] if items else None

    # -- writes ------------------------------------------------------------

    def put_ilm_policy(self, name: str, body: dict[str, Any]) -> None:
        self._call(f"PUT _ilm/policy/{name}", lambda: self.client.ilm.put_lifecycle(name=name, body=body))

    def put_component_template(self, name: str, body: dict[str, Any]) -> None:
        self._call(f"PUT _component_template/{name}",
                   lambda: self.client.cluster.put_component_template(name=name, body=body))

    def put_index_template(self, name: str, body: dict[str, Any]) -> None:
        self._call(f"PUT _index_template/{name}", lambda: self.client.indices.put_index_template(name=name, body=body))

    def create_data_stream(self, name: str) -> None:
        self._call(f"PUT _data_stream/{name}", lambda: self.client.indices.create_data_stream(name=name))

    def delete_ilm_policy(self, name: str) -> None:
        self._call(f"DELETE _ilm/policy/{name}", lambda: self.client.ilm.delete_lifecycle(name=name))

    def delete_component_template(self, name: str) -> None:
        self._call(f"DELETE _component_template/{name}",
                   lambda: self.client.cluster.delete_component_template(name=name))

    def delete_index_template(self, name: str) -> None:
        self._call(f"DELETE _index_template/{name}", lambda: self.client.indices.delete_index_template(name=name))

    def simulate_index(self, index: str) -> dict[str, Any]:
        """POST _index_template/_simulate_index/<index>: what a new index of that name would get."""
        resp = self._call(f"POST _index_template/_simulate_index/{index}",
                          lambda: self.client.indices.simulate_index_template(name=index))
        return dict(resp.body) if resp is not None else {}
