"""Kerberos for real: an MIT KDC on 127.0.0.1 (tests/kdc.py), test servers that demand SPNEGO
(tests/spnego.py), and the controller's own clients - WebHDFS (``WebHdfsStorage``), the
ResourceManager REST client and the up-front credentials check - with tickets from
``kinit -kt``, without, expired, skewed, and for host names the KDC does not know.

No JVM: the servers are the Python test servers answering as the recorded secured cluster
did; the tickets, tokens and GSSAPI checks are real.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
import time

import luigi
import pytest
import requests

from pipeline.cluster import kerberos
from pipeline.cluster.yarn import YarnPermissionDenied
from pipeline.cluster.yarn_clients import ResourceManagerRest, client_from_config, kerberos_auth
from pipeline.errors import (
    ClockSkew,
    ConfigError,
    KerberosError,
    NoTicket,
    StoragePermissionDenied,
    TicketExpired,
    UnknownServicePrincipal,
)
from pipeline.runner import controller
from pipeline.storage.locations import parse_location
from pipeline.storage.webhdfs import WebHdfsStorage
from tests.conftest import REPO
from tests.kdc import REALM
from tests.recordings import decode_delegation_token, recording
from tests.replay import RM_HEADERS, ReplayServer, Reply
from tests.spnego import SpnegoGate
from tests.webhdfs_server import WebHdfsServer

APP = "application_1796403851686_0002"  # the recorded secured cluster's application (http/11)
KILLED_APP = "application_1796403851686_0004"  # owned by alice; bob's kill was refused (http/12, 14)
ALICE = f"alice@{REALM}"


def _recorded_body(name: str, index: int = -1) -> bytes:
    return recording(name).exchanges[index].response.content


@pytest.fixture
def namenode(kdc):
    gate = SpnegoGate(kdc.keytab("http"), "namenode")
    with WebHdfsServer(spnego=gate) as nn:
        nn.put_dir("/user/alice", owner="alice")
        nn.put_file("/user/alice/hello.txt", b"hello-secure\n", owner="alice")
        yield nn


@pytest.fixture
def rm(kdc):
    """The secured RM: its recorded app report (http/11), and a kill route that lets the
    owner (202, http/12) and refuses anyone else (403, http/14)."""
    gate = SpnegoGate(kdc.keytab("http"), "resourcemanager")
    with ReplayServer(spnego=gate) as srv:
        srv.route("GET", f"/ws/v1/cluster/apps/{APP}", Reply(200, _recorded_body("11"), headers=list(RM_HEADERS)))

        def kill(req):
            accepted = recording("12").exchanges[-1].response
            refused = recording("14").exchanges[-1].response
            answer = accepted if req.principal == ALICE else refused
            keep = [(k, v) for k, v in answer.headers if k.lower() not in ("www-authenticate", "set-cookie")]
            return Reply(answer.status, answer.content, headers=keep)

        srv.route("PUT", f"/ws/v1/cluster/apps/{KILLED_APP}/state", kill)
        yield srv


def _storage(nn: WebHdfsServer, host: str = "localhost", **kwargs) -> WebHdfsStorage:
    return WebHdfsStorage([nn.url_as(host)], auth="kerberos", read_retries=0, **kwargs)


def _loc(nn: WebHdfsServer, path: str, host: str = "localhost"):
    return parse_location(f"webhdfs://{host}:{nn.port}{path}")


def _rm(srv: ReplayServer, host: str = "localhost", **kwargs) -> ResourceManagerRest:
    return ResourceManagerRest(srv.url_as(host), timeout=10, auth=kerberos_auth(**kwargs))


# --------------------------------------------------------------------------- with a ticket


def test_webhdfs_with_a_ticket_gets_200_then_reuses_the_cookie(namenode, ticket):
    store = _storage(namenode)
    folder = _loc(namenode, "/user/alice")
    assert [e.name for e in store.list_dir(folder)] == ["hello.txt"]
    store.write_bytes(_loc(namenode, "/user/alice/out/part.txt"), b"written with a ticket")
    assert store.read_bytes(_loc(namenode, "/user/alice/out/part.txt")) == b"written with a ticket"
    assert store.exists(_loc(namenode, "/user/alice/out"))
    gate = namenode.spnego
    # one SPNEGO round (the 401, then the token), then the cookie alone, as in http/03 and 05
    assert gate.hows() == [("none", 401), ("token", 200)] + [("cookie", 200)] * 3
    assert namenode.node("/user/alice/out/part.txt").owner == "alice", "the ticket's user, not user.name"
    # the DataNode legs went with the delegation token the NameNode issued, never SPNEGO
    tokens = [decode_delegation_token(t) for t in namenode.delegation_tokens]
    assert [(t.owner, t.kind) for t in tokens] == [("alice", "WEBHDFS delegation")] * 2


def test_rm_with_a_ticket_gets_200_then_reuses_the_cookie(rm, ticket):
    client = _rm(rm)
    report = client.application(APP)
    assert (report.application_id, report.user, report.final_status) == (APP, "alice", "SUCCEEDED")
    assert client.application(APP) == report
    assert rm.spnego.hows() == [("none", 401), ("token", 200), ("cookie", 200)]
    assert rm.requests[-1].principal == ALICE


def test_rm_client_from_config_logs_in_from_principal_and_keytab(rm, kdc, no_ticket):
    """[yarn] principal and keytab: no kinit, no ticket cache written; the keytab's ticket
    stays in the process's memory."""
    cfg = type("Cfg", (), {"client": "rest", "auth": "kerberos", "principal": ALICE, "keytab": kdc.keytab("alice"),
                           "rm_address": rm.url_as("localhost"), "request_timeout": 10.0})()
    client = client_from_config(cfg)
    assert client.application(APP).user == "alice"
    assert client.user is None, "no user.name with Kerberos"
    assert not os.path.exists(no_ticket.removeprefix("FILE:")), "the user's ticket cache is left alone"


def test_the_namenodes_cookie_at_the_rm_leads_to_a_fresh_spnego_round(kdc, ticket):
    """Cookies are not port-scoped: a shared jar sends the NameNode's t=kerberos cookie to the
    RM, which refuses its type (http/15); the client must SPNEGO again, not fail."""
    secret = os.urandom(32)  # one signature secret for all daemons, as on the recorded cluster
    nn_gate = SpnegoGate(kdc.keytab("http"), "namenode", secret=secret)
    rm_gate = SpnegoGate(kdc.keytab("http"), "resourcemanager", secret=secret)
    with WebHdfsServer(spnego=nn_gate) as nn, ReplayServer(spnego=rm_gate) as srv:
        srv.route("GET", f"/ws/v1/cluster/apps/{APP}", Reply(200, _recorded_body("11"), headers=list(RM_HEADERS)))
        store = _storage(nn)
        store.exists(_loc(nn, "/"))
        client = _rm(srv)
        client.session.cookies.update(store._session.cookies)  # the NameNode's cookie, in the RM's jar
        assert "t=kerberos&" in client.session.cookies["hadoop.auth"]
        assert client.application(APP).user == "alice"
    first, second = rm_gate.events[:2]
    assert (first.how, first.status, first.cookie_problem) == ("cookie", 401, recording("15").exchanges[0].response.reason)
    assert (second.how, second.status) == ("cookie+token", 200)
    assert "t=kerberos-dt&" in client.session.cookies["hadoop.auth"]


def test_an_expired_cookie_leads_to_a_fresh_spnego_round(namenode, ticket):
    store = _storage(namenode)
    store.exists(_loc(namenode, "/user"))
    expired = namenode.spnego.cookie_value(ALICE, expires_ms=int(time.time() * 1000) - 60_000)
    store._session.cookies.clear()  # the jar now holds the expired cookie alone
    store._session.cookies.set("hadoop.auth", f'"{expired}"', path="/")
    assert store.exists(_loc(namenode, "/user/alice"))
    assert namenode.spnego.events[-2].cookie_problem == recording("17").exchanges[0].response.reason
    assert namenode.spnego.hows()[-2:] == [("cookie", 401), ("cookie+token", 200)]


def _child_lists(store, loc, client, queue):
    try:
        queue.put(([e.name for e in store.list_dir(loc)], client.application(APP).user, os.getpid()))
    except BaseException as exc:  # report to the parent instead of dying silently
        queue.put(repr(exc))


def test_forked_task_processes_authenticate_on_their_own(namenode, rm, ticket):
    """Luigi forks a process per task: the child must not use the parent's sockets, cookies or
    GSSAPI contexts; it makes its own SPNEGO round on its own connection."""
    store, client = _storage(namenode), _rm(rm)
    loc = _loc(namenode, "/user/alice")
    store.list_dir(loc)
    client.application(APP)
    parent_ports = {e.client[1] for e in namenode.spnego.events} | {e.client[1] for e in rm.spnego.events}
    queue = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(target=_child_lists, args=(store, loc, client, queue))
    child.start()
    answer = queue.get(timeout=60)
    child.join(30)
    assert answer[:2] == (["hello.txt"], "alice"), answer
    for gate in (namenode.spnego, rm.spnego):
        child_events = gate.events[2:]
        assert [(e.how, e.status) for e in child_events] == [("none", 401), ("token", 200)], "its own round"
        assert not {e.client[1] for e in child_events} & parent_ports, "its own connections"


# --------------------------------------------------------------------------- nothing secret in a log


def test_no_token_cookie_delegation_token_or_keytab_path_reaches_a_log(namenode, rm, kdc, no_ticket, caplog,
                                                                        capfd):
    caplog.set_level(logging.DEBUG)  # as [console] log = luigi: everything, DEBUG included
    keytab = kdc.keytab("alice")
    store = _storage(namenode, principal=ALICE, keytab=keytab)
    store.write_bytes(_loc(namenode, "/user/alice/secret-test.txt"), b"x")
    store.read_bytes(_loc(namenode, "/user/alice/secret-test.txt"))
    client = _rm(rm, principal=ALICE, keytab=keytab)
    client.application(APP)
    with pytest.raises(YarnPermissionDenied):
        _rm(rm, principal=f"bob@{REALM}", keytab=kdc.keytab("bob")).kill(KILLED_APP)
    with pytest.raises(StoragePermissionDenied):  # and a failure: its one line, no traceback of tokens
        _storage(namenode).list_dir(_loc(namenode, "/user/alice"))
    secrets = namenode.spnego.secrets() | rm.spnego.secrets() | set(namenode.delegation_tokens)
    assert len(secrets) >= 8 and namenode.delegation_tokens
    out, err = capfd.readouterr()
    logged = caplog.text + out + err
    assert any("GET /webhdfs/v1/" in r.getMessage() for r in caplog.records), "DEBUG lines were captured"
    leaked = [s[:12] + "…" for s in secrets if s in logged or s.split("&s=")[-1] in logged]
    assert not leaked, f"secrets in the log: {leaked}"
    assert keytab not in logged and keytab not in repr(store) and keytab not in repr(client.auth)


# --------------------------------------------------------------------------- every ticket problem in one line


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


def test_no_ticket_says_kinit(namenode, rm, no_ticket):
    with pytest.raises(StoragePermissionDenied) as storage_error:
        _storage(namenode).list_dir(_loc(namenode, "/user/alice"))
    with pytest.raises(YarnPermissionDenied) as rm_error:
        _rm(rm).application(APP)
    for error in (storage_error.value, rm_error.value):
        assert isinstance(error.__cause__, NoTicket)
        assert "no Kerberos ticket: run kinit" in _one_line(error)
    assert namenode.spnego.hows() == [("none", 401)], "no token could be made: one request, no retry loop"


def test_an_expired_ticket_says_so(namenode, kdc, tmp_path, monkeypatch):
    monkeypatch.setenv("KRB5CCNAME", kdc.kinit("alice", tmp_path / "cc", lifetime="2s"))
    time.sleep(3)
    with pytest.raises(StoragePermissionDenied) as error:
        _storage(namenode).exists(_loc(namenode, "/user"))
    assert isinstance(error.value.__cause__, TicketExpired)
    assert "ticket has expired: run kinit again" in _one_line(error.value)
    with pytest.raises(TicketExpired, match="kinit -R"):
        kerberos.check_credentials()


def test_a_host_name_without_a_service_principal_names_that_host(namenode, rm, ticket):
    """The KDC knows HTTP/localhost only: a client naming the server 127.0.0.1 asks for
    HTTP/127.0.0.1 and the KDC has none (as http/92 with the host name 'vm')."""
    with pytest.raises(StoragePermissionDenied) as storage_error:
        _storage(namenode, host="127.0.0.1").list_dir(_loc(namenode, "/user", host="127.0.0.1"))
    with pytest.raises(YarnPermissionDenied) as rm_error:
        _rm(rm, host="127.0.0.1").application(APP)
    for error in (storage_error.value, rm_error.value):
        assert isinstance(error.__cause__, UnknownServicePrincipal) and error.__cause__.host == "127.0.0.1"
        assert f"the KDC has no principal HTTP/127.0.0.1@{REALM}: the client named the server '127.0.0.1'" in (
            _one_line(error))


_SKEWED_CLIENT = """
import sys
from pipeline.storage.webhdfs import WebHdfsStorage
from pipeline.storage.locations import parse_location
try:
    WebHdfsStorage([sys.argv[1]], auth="kerberos", read_retries=0).exists(parse_location(sys.argv[2]))
except Exception as exc:
    print(type(exc.__cause__).__name__, exc, sep="|")
"""


def test_clock_skew_says_synchronise_the_clock(namenode, kdc, tmp_path):
    """The client 10 minutes ahead of the KDC (faketime, as recorded in http/31): the KDC
    refuses the service ticket; the one line says to fix the clock."""
    faketime = shutil.which("faketime")
    if faketime is None:
        pytest.skip("faketime missing: apt-get install faketime (.ci/run does)")
    env = {**os.environ, "KRB5CCNAME": kdc.kinit("alice", tmp_path / "cc"), "PYTHONPATH": str(REPO)}
    argv = [faketime, "-f", "+10m", sys.executable, "-c", _SKEWED_CLIENT, namenode.url_as("localhost"),
            str(_loc(namenode, "/user"))]
    done = subprocess.run(argv,
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    kind, _, message = done.stdout.strip().partition("|")
    assert kind == ClockSkew.__name__, done.stdout + done.stderr
    assert "differ by more than Kerberos allows" in message and "synchronise the clocks" in message


def test_a_kill_the_user_may_not_make_says_who_may(rm, kdc, tmp_path, monkeypatch):
    monkeypatch.setenv("KRB5CCNAME", kdc.kinit("bob", tmp_path / "cc-bob"))
    with pytest.raises(YarnPermissionDenied) as error:
        _rm(rm).kill(KILLED_APP)
    assert _one_line(error.value) == (
        f"bob@{REALM} may not kill {KILLED_APP}: only its owner, a YARN admin (yarn.admin.acl) or an administrator "
        f"of its queue may; ask one of them to run yarn application -kill {KILLED_APP}, or let it finish")
    monkeypatch.setenv("KRB5CCNAME", kdc.kinit("alice", tmp_path / "cc-alice"))
    assert _rm(rm).kill(KILLED_APP) is True  # the owner's kill: 202 with {"state":"RUNNING"}, as recorded


# --------------------------------------------------------------------------- checked once, up front


@pytest.fixture
def kerberized_config():
    config = luigi.configuration.get_config()
    saved = {(s, k): config.get(s, k, None) for s, k in (("spark", "master"), ("yarn", "auth"), ("yarn", "principal"),
                                                        ("yarn", "keytab"))}
    for section in ("spark", "yarn"):
        if not config.has_section(section):
            config.add_section(section)
    config.set("spark", "master", "yarn")
    config.set("yarn", "auth", "kerberos")
    yield config
    for (section, key), value in saved.items():
        if value is None:
            config.remove_option(section, key)
        else:
            config.set(section, key, value)


def test_the_controller_checks_the_ticket_once_before_scheduling(kerberized_config, no_ticket, kdc, tmp_path,
                                                                  monkeypatch):
    from pipeline.flows.train import TrainAll

    task = TrainAll(data=str(tmp_path / "no-data-needed"), models=str(tmp_path / "models"))
    with pytest.raises(NoTicket, match="no Kerberos ticket: run kinit"):
        task.requires()  # before the plan: no data read, no job scheduled
    monkeypatch.setenv("KRB5CCNAME", kdc.kinit("alice", tmp_path / "cc"))
    assert controller.check_kerberos() == ALICE
    kerberized_config.set("yarn", "principal", ALICE)
    kerberized_config.set("yarn", "keytab", kdc.keytab("alice"))
    monkeypatch.setenv("KRB5CCNAME", no_ticket)
    assert controller.check_kerberos() == ALICE  # the keytab logs in; no ticket cache needed
    kerberized_config.set("yarn", "principal", f"mallory@{REALM}")
    with pytest.raises(KerberosError) as error:
        controller.check_kerberos()
    assert f"cannot get a Kerberos ticket for mallory@{REALM} from [yarn] keytab" in str(error.value)
    assert kdc.keytab("alice") not in str(error.value)
    kerberized_config.set("yarn", "keytab", str(tmp_path / "missing.keytab"))
    with pytest.raises(ConfigError, match="not a readable file"):
        controller.check_kerberos()


def test_without_kerberos_settings_nothing_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'none'}")
    assert controller.kerberos_needed() is False
    assert controller.check_kerberos() is None


def test_a_plain_requests_session_shows_what_spnego_adds(namenode, ticket):
    """The control: without the SPNEGO auth the same request is the recorded bare 401."""
    res = requests.get(f"{namenode.url_as('localhost')}/webhdfs/v1/user?op=LISTSTATUS", timeout=10)
    recorded = recording("01").exchanges[0].response
    assert (res.status_code, res.reason) == (recorded.status, recorded.reason)
    assert [k for k in res.headers] == recorded.header_names()
    assert json.loads(_storage(namenode)._session.get(
        f"{namenode.url_as('localhost')}/webhdfs/v1/user?op=LISTSTATUS", timeout=10).content)["FileStatuses"]


def test_threads_sharing_a_storage_each_finish_their_own_spnego_round(kdc, ticket):
    """requests-gssapi keeps its GSSAPI context per host on the auth object: threads starting
    SPNEGO at once would step each other's contexts. Ours are per thread."""
    gate = SpnegoGate(kdc.keytab("http"), "namenode")
    with WebHdfsServer(spnego=gate, delay_s=0.05) as nn:
        store = _storage(nn)
        errors: list[BaseException] = []

        def work() -> None:
            try:
                assert store.exists(_loc(nn, "/"))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert not errors, errors
    assert sum(1 for how, status in gate.hows() if "token" in how and status == 200) >= 2, "rounds overlapped"
