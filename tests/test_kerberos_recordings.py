"""Every recording of the Kerberos-secured cluster (tests/fixtures/kerberos) parsed or replayed.

* ``http/``: each recording's six files agree with each other (the transcript, the exchanges,
  the command, its exit code and output); the test SPNEGO servers, asked what the recorded
  clients asked (with a real token from the test KDC), answer the recorded status line,
  headers in the recorded order and body; the clients' and servers' Kerberos error texts
  become the one-line errors the controller prints.
* ``cli/``: the MIT tools', Hadoop CLIs' and spark-submit's texts are classified.
"""

from __future__ import annotations

import base64
import http.client
import re
import stat
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from pipeline.cluster import kerberos
from pipeline.cluster.yarn import SubmitOutputParser, YarnPermissionDenied, kill_refusal
from pipeline.cluster.yarn_clients import ResourceManagerRest, YarnCli, kerberos_auth
from pipeline.errors import ClockSkew, KerberosError, NoTicket, TicketExpired, UnknownServicePrincipal
from tests.kdc import REALM
from tests.recordings import (
    CLI,
    HTTP,
    HTTP_SUFFIXES,
    KERBEROS,
    cli,
    client_output,
    decode_delegation_token,
    names,
    recording,
    transcript,
)
from tests.replay import RM_HEADERS, ReplayServer, Reply
from tests.spnego import SpnegoGate
from tests.webhdfs_server import WebHdfsServer

RECORDINGS = [
    "01-webhdfs-liststatus-no-auth", "02-webhdfs-liststatus-negotiate-no-ticket",
    "03-webhdfs-liststatus-spnego-401-then-200", "04-webhdfs-liststatus-spnego-preemptive",
    "05-webhdfs-liststatus-cookie-only", "06-webhdfs-getfilestatus-missing-path",
    "07-webhdfs-open-redirect-to-datanode", "08-webhdfs-create-two-step", "09-datanode-open-without-delegation",
    "10-rm-app-no-auth", "11-rm-app-spnego-401-then-200", "12-rm-app-state-kill-spnego",
    "13-rm-app-state-after-kill", "14-rm-app-state-kill-by-other-user-403", "15-rm-apps-with-namenode-cookie",
    "16-rm-apps-cookie-only", "17-webhdfs-expired-cookie", "18-webhdfs-tampered-cookie",
    "20-python-requests-gssapi-webhdfs-liststatus", "21-python-requests-kerberos-rm-apps",
    "30-webhdfs-expired-ticket", "31-webhdfs-clock-skew-client-side", "32-webhdfs-clock-skew-server-side",
    "33-webhdfs-expired-nonrenewable-ticket", "40-webhdfs-getdelegationtoken",
    "41-webhdfs-liststatus-with-delegation-param-no-kerberos", "50-java-webhdfs-client-ls",
    "51-java-webhdfs-client-cat", "90-trap-strict-principal-webhdfs-via-127.0.0.1",
    "91-webhdfs-liststatus-via-127.0.0.1", "92-trap-unknown-service-principal-via-hostname-vm",
]  # fmt: skip
CLI_COVERED = {
    "01-klist-no-ticket.txt", "05-kinit-wrong-password.txt", "06-kinit-unknown-principal.txt",
    "07-kinit-kdc-unreachable.txt", "10-hdfs-dfs-ls-no-ticket.txt", "11-yarn-application-list-no-ticket.txt",
    "12-spark-submit-no-ticket.txt", "12-spark-submit-no-ticket.stderr-full", "13-curl-negotiate-no-ticket.txt",
    "14-python-requests-gssapi-no-ticket.txt", "15-python-requests-kerberos-no-ticket.txt",
    "20-yarn-application-kill-by-other-user.txt", "21-yarn-application-kill.txt", "24-yarn-logs-as-other-user.txt",
    "30-kinit-with-clock-skew.txt", "31-hdfs-dfs-ls-clock-skew.txt", "43-python-requests-gssapi-expired-ticket.txt",
    "44-hdfs-dfs-ls-expired-renewable-ticket.txt", "47-hdfs-dfs-ls-expired-ticket.txt",
    "48-spark-submit-expired-ticket.txt", "48-spark-submit-expired-ticket.stderr-full",
    "49-kinit-R-expired-ticket.txt", "92-trap-yarn-container-without-krb5conf.txt",
}  # fmt: skip


def test_every_kerberos_fixture_is_covered():
    """Like test_yarn_parsing's check for yarn/ and spark-submit/: a new recording must be
    added to a test here. Each http/ recording's six files are read by
    test_recording_files_agree; the cli/ files by the tests named in CLI_COVERED's users."""
    assert names() == RECORDINGS
    assert {p.name for p in HTTP.iterdir()} == {f"{n}{s}" for n in RECORDINGS for s in HTTP_SUFFIXES}
    assert {p.name for p in CLI.iterdir()} == CLI_COVERED
    assert {p.name for p in KERBEROS.iterdir()} == {"README.md", "http", "cli"}


# --------------------------------------------------------------------------- http/: the files agree


@pytest.mark.parametrize("name", RECORDINGS)
def test_recording_files_agree(name):
    rec = recording(name)
    segments = transcript(name)
    for conn in {e.conn for e in rec.exchanges}:
        mine = [e for e in rec.exchanges if e.conn == conn]
        sent = b"".join(data for way, c, _, data in segments if c == conn and way == ">>>")
        answered = b"".join(data for way, c, _, data in segments if c == conn and way == "<<<")
        assert sent == b"".join(e.request.raw for e in mine)
        assert answered == b"".join(b"".join(i.raw for i in e.interim) + e.response.raw for e in mine)
        assert {port for _, c, port, _ in segments if c == conn} == {e.server_port for e in mine}
    command, code, stdout, stderr = client_output(name)
    assert (command.strip(), code) == (rec.command.strip(), rec.exit_code)
    final = rec.exchanges[-1].response
    if "py_http.py" in command:  # the Python clients print the status chain they saw on one connection
        chain = " -> ".join(str(e.response.status) for e in rec.exchanges)
        assert f"status chain: {chain}" in stdout + stderr
    elif command.startswith("hdfs dfs"):  # Hadoop's Java client prints what it read
        assert stdout.strip() and ("Found" in stdout or "hello-secure" in stdout)
    else:  # curl -i prints the last answer's status line (bash -c for the two-step CREATE too)
        assert final.first_line in stdout
    for exchange in rec.exchanges:
        assert exchange.request.first_line in (exchange.request.raw.decode("latin-1").splitlines() or [""])[0]
        if exchange.response.header("Transfer-Encoding") == "chunked":
            assert exchange.response.body_dechunked is not None


def test_the_recorded_traps_hold():
    """README's traps 2, 5, 6 and 8, read off the recordings."""
    assert recording("04").exchanges[0].request.header("Authorization").startswith("Negotiate ")  # pre-emptive curl
    for name in ("20", "21", "50"):  # the Python and Java clients take the 401 first
        assert recording(name).exchanges[0].response.status == 401
    nn_cookie = recording("03").exchanges[1].response.header("Set-Cookie")
    rm_cookie = recording("11").exchanges[1].response.header("Set-Cookie")
    assert "&t=kerberos&" in nn_cookie and "&t=kerberos-dt&" in rm_cookie
    assert "Expires" not in nn_cookie and "Max-Age" not in nn_cookie  # a session cookie
    issued = int(re.search(r"&e=(\d+)", nn_cookie).group(1))
    # validity 10 h from the answer (recorded at 17:09:01 UTC per its Date header)
    assert issued - 1796404141000 in range(36000 * 1000, 36000 * 1000 + 1000)
    tokens = []
    for name, index in (("07", 1), ("08", 0)):
        location = recording(name).exchanges[index].response.header("Location")
        query = parse_qsl(urlsplit(location).query, keep_blank_values=True)
        assert [k for k, _ in query][:3] == ["op", "delegation", "namenoderpcaddress"]
        tokens.append(decode_delegation_token(dict(query)["delegation"]))
    got = decode_delegation_token(re.search(r'"urlString":"([^"]+)"', recording("40").exchanges[0].response.content
                                            .decode()).group(1))
    for token in (*tokens, got):
        assert (token.kind, token.service, token.owner, token.max_ms - token.issue_ms) == (
            "WEBHDFS delegation", "127.0.0.1:19000", "alice", 7 * 24 * 3600 * 1000)
    assert tokens[1].sequence == tokens[0].sequence + 1, "a new token on every redirect"
    # 41: a delegation= parameter alone (no cookie, no token) is accepted by the NameNode
    bypass = recording("41").exchanges[0]
    assert bypass.request.header("Authorization") is None and bypass.request.header("Cookie") is None
    assert bypass.response.status == 200
    # 50/51: Hadoop's Java client does SPNEGO only to get and cancel its delegation token
    for name in ("50", "51"):
        spnego = [re.search(r"op=([A-Z]+)", e.request.first_line).group(1) for e in recording(name).exchanges
                  if e.request.header("Authorization")]
        assert spnego == ["GETDELEGATIONTOKEN", "CANCELDELEGATIONTOKEN"]


# --------------------------------------------------------------------------- http/: errors in one line


class _Auth:
    """A stand-in for SpnegoAuth that failed to make a token with ``message``."""

    def __init__(self, message: str | None) -> None:
        self.message, self.principal = message, ""

    def last_failure(self, host: str) -> str | None:
        return self.message


def _response(name: str, index: int = -1, host: str = "localhost") -> requests.Response:
    exchange = recording(name).exchanges[index]
    res = requests.Response()
    res.status_code, res.reason = exchange.response.status, exchange.response.reason
    res.headers.update(dict(exchange.response.headers))
    res._content = exchange.response.content
    res.url = f"http://{host}:{exchange.server_port}{exchange.request.first_line.split()[1]}"
    return res


def _gss_failure(name: str) -> str:
    """curl's ``gss_init_sec_context() failed: ...`` line (the MIT library's own words)."""
    return re.search(r"gss_init_sec_context\(\) failed: (.*)", client_output(name)[3]).group(1)


@pytest.mark.parametrize("name, host, kind, words", [
    ("02-webhdfs-liststatus-negotiate-no-ticket", "localhost", NoTicket, "no Kerberos ticket: run kinit"),
    ("30-webhdfs-expired-ticket", "localhost", TicketExpired, "ticket has expired: run kinit again"),
    ("33-webhdfs-expired-nonrenewable-ticket", "localhost", TicketExpired, "kinit -R renews it while it is renewable"),
    ("31-webhdfs-clock-skew-client-side", "localhost", ClockSkew, "the KDC refused: its clock and this machine's"),
    ("92-trap-unknown-service-principal-via-hostname-vm", "vm", UnknownServicePrincipal,
     f"the KDC has no principal HTTP/vm@{REALM}: the client named the server 'vm'"),
])  # fmt: skip
def test_a_token_the_client_could_not_make_is_explained(name, host, kind, words):
    """The final answer is the bare 401 (no library raises, README trap 10); the reason is
    the GSSAPI failure on this side, which the SPNEGO auth keeps."""
    problem = kerberos.refusal(_response(name, host=host), _Auth(_gss_failure(name)))
    assert isinstance(problem, kind) and words in str(problem)
    if kind is UnknownServicePrincipal:
        assert problem.host == "vm"


@pytest.mark.parametrize("name, host, kind, words", [
    ("32-webhdfs-clock-skew-server-side", "localhost", ClockSkew, "localhost refused the Kerberos ticket: its clock"),
    ("90-trap-strict-principal-webhdfs-via-127.0.0.1", "127.0.0.1", KerberosError,
     "127.0.0.1 has no key for HTTP/127.0.0.1, the principal this client asked for"),
])  # fmt: skip
def test_a_token_the_server_refused_is_explained(name, host, kind, words):
    problem = kerberos.refusal(_response(name, host=host), _Auth(None))
    assert type(problem) is kind and words in str(problem)


def test_401_and_403_that_are_not_about_a_ticket():
    # a 401 whose token was sent and still refused: said so, not "run kinit"
    problem = kerberos.refusal(_response("01"), _Auth(None))
    assert type(problem) is KerberosError and "refused the Kerberos token" in str(problem)
    # the 403 of a kill by another user is about permission (README trap 12), not Kerberos
    assert kerberos.refusal(_response("14"), _Auth(None)) is None
    refused = kill_refusal(recording("14").exchanges[0].response.content.decode())
    assert str(refused).startswith(f"bob@{REALM} may not kill application_1796403851686_0004: only its owner")


# --------------------------------------------------------------------------- cli/


@pytest.mark.parametrize("name, kind, words", [
    ("01-klist-no-ticket", NoTicket, "run kinit"),
    ("05-kinit-wrong-password", KerberosError, "the KDC refused the key"),
    ("06-kinit-unknown-principal", KerberosError, f"the keytab holds no key for mallory@{REALM}"),
    ("07-kinit-kdc-unreachable", KerberosError, f"no KDC of realm {REALM} answered"),
    ("10-hdfs-dfs-ls-no-ticket", NoTicket, "none, or an expired one the JVM could not renew"),
    ("11-yarn-application-list-no-ticket", NoTicket, "none, or an expired one the JVM could not renew"),
    ("12-spark-submit-no-ticket", NoTicket, "none, or an expired one the JVM could not renew"),
    ("13-curl-negotiate-no-ticket", NoTicket, "no Kerberos ticket: run kinit"),
    ("31-hdfs-dfs-ls-clock-skew", ClockSkew, "synchronise the clocks"),
    ("47-hdfs-dfs-ls-expired-ticket", NoTicket, "none, or an expired one the JVM could not renew"),
    ("48-spark-submit-expired-ticket", NoTicket, "none, or an expired one the JVM could not renew"),
    ("49-kinit-R-expired-ticket", TicketExpired, "run kinit again"),
    # no Kerberos problem in the text: the Python clients' bare 401 (trap 10), a working
    # renewal (trap 8), kinit correcting a skew (trap 7), HDFS permissions, a kill
    ("14-python-requests-gssapi-no-ticket", None, ""),
    ("15-python-requests-kerberos-no-ticket", None, ""),
    ("43-python-requests-gssapi-expired-ticket", None, ""),
    ("44-hdfs-dfs-ls-expired-renewable-ticket", None, ""),
    ("30-kinit-with-clock-skew", None, ""),
    ("24-yarn-logs-as-other-user", None, ""),
    ("21-yarn-application-kill", None, ""),
])  # fmt: skip
def test_cli_texts_are_classified(name, kind, words):
    _command, _code, stdout, stderr = cli(name)
    problem = kerberos.classify(stdout + stderr)
    if kind is None:
        assert problem is None
    else:
        assert type(problem) is kind and words in str(problem)


def test_a_yarn_container_without_krb5_conf_is_explained():
    problem = kerberos.classify((CLI / "92-trap-yarn-container-without-krb5conf.txt").read_text())
    assert type(problem) is KerberosError and "-Djava.security.krb5.conf" in str(problem)


@pytest.mark.parametrize("name", ["12-spark-submit-no-ticket", "48-spark-submit-expired-ticket"])
def test_spark_submit_without_a_ticket_is_recognised(name):
    parser = SubmitOutputParser()
    for line in (CLI / f"{name}.stderr-full").read_text().splitlines(keepends=True):
        parser.feed(line)
    parser.close()
    assert parser.application_id is None and parser.outcome == "failed"
    assert isinstance(parser.kerberos_problem, NoTicket)
    assert "run kinit" in str(parser.kerberos_problem)


def _yarn_replaying(tmp_path, name: str, code: int):
    """A ``yarn`` executable that prints the recorded output of cli/<name>."""
    _command, _code, stdout, stderr = cli(name)
    (tmp_path / "out").write_text(stdout + stderr)
    script = tmp_path / "yarn"
    script.write_text(f"#!/bin/sh\ncat '{tmp_path / 'out'}'\nexit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_yarn_cli_refusals_are_one_line(tmp_path):
    (tmp_path / "a").mkdir()
    no_ticket = YarnCli(_yarn_replaying(tmp_path / "a", "11-yarn-application-list-no-ticket", 1))
    with pytest.raises(YarnPermissionDenied, match="no valid Kerberos ticket .*: run kinit") as error:
        no_ticket.applications_by_tag("x")
    assert isinstance(error.value.__cause__, NoTicket)
    (tmp_path / "b").mkdir()
    other_user = YarnCli(_yarn_replaying(tmp_path / "b", "20-yarn-application-kill-by-other-user", 1))
    with pytest.raises(YarnPermissionDenied, match="^bob may not kill application_1796403851686_0005: only its owner"):
        other_user.kill("application_1796403851686_0005")


# --------------------------------------------------------------------------- http/: the test servers replay them


def _token() -> str:
    import gssapi

    name = gssapi.Name("HTTP@localhost", gssapi.NameType.hostbased_service)
    context = gssapi.SecurityContext(name=name, usage="initiate", flags=[gssapi.RequirementFlag.mutual_authentication])
    return "Negotiate " + base64.b64encode(context.step()).decode()


def _ask(port: int, method: str, target: str, headers: dict[str, str], body: bytes | None = None):
    """One request; ``(status, reason, headers in order with repeats, body dechunked)``."""
    conn = http.client.HTTPConnection("localhost", port, timeout=10)
    try:
        conn.request(method, target, body=body, headers=headers)
        res = conn.getresponse()
        return res.status, res.reason, res.getheaders(), res.read()
    finally:
        conn.close()


def _names(headers) -> list[str]:
    return [k for k, _ in headers]


@pytest.fixture
def servers(kdc, ticket):
    secret = b"one secret for all daemons"
    nn_gate = SpnegoGate(kdc.keytab("http"), "namenode", secret=secret)
    rm_gate = SpnegoGate(kdc.keytab("http"), "resourcemanager", secret=secret)
    with WebHdfsServer(spnego=nn_gate) as nn, ReplayServer(spnego=rm_gate) as rm:
        nn.put_dir("/tmp")
        nn.put_dir("/user")
        nn.put_file("/tmp/hello.txt", b"hello-secure\n")
        app = "application_1796403851686_0002"
        rm.route("GET", f"/ws/v1/cluster/apps/{app}", Reply(200, recording("11").exchanges[1].response.content,
                                                           headers=list(RM_HEADERS)))
        yield nn, rm


def _recorded(name: str, index: int):
    return recording(name).exchanges[index]


@pytest.mark.parametrize("name, index, credentials", [
    ("01-webhdfs-liststatus-no-auth", 0, "none"),
    ("17-webhdfs-expired-cookie", 0, "expired cookie"),
    ("18-webhdfs-tampered-cookie", 0, "tampered cookie"),
    ("10-rm-app-no-auth", 0, "none"),
    ("12-rm-app-state-kill-spnego", 0, "none"),
    ("15-rm-apps-with-namenode-cookie", 0, "namenode cookie"),
])  # fmt: skip
def test_refusals_are_the_recorded_ones(servers, name, index, credentials):
    """Same request, same answer: status line, headers in order, Jetty's page byte for byte."""
    nn, rm = servers
    recorded = _recorded(name, index)
    server = rm if recorded.server_port == 18088 else nn
    method, target, _ = recorded.request.first_line.split()
    gate = server.spnego
    headers = {}
    if credentials == "expired cookie":
        headers["Cookie"] = f'hadoop.auth="{gate.cookie_value(f"alice@{REALM}", expires_ms=1)}"'
    elif credentials == "tampered cookie":
        good = gate.cookie_value(f"alice@{REALM}")
        headers["Cookie"] = 'hadoop.auth="' + good.replace("u=alice&p=alice@", "u=root&p=root@") + '"'
    elif credentials == "namenode cookie":
        headers["Cookie"] = f'hadoop.auth="{nn.spnego.cookie_value(f"alice@{REALM}")}"'
    body = recorded.request.content or None
    if body:
        headers["Content-Type"] = "application/json"
    status, reason, got, content = _ask(server.port, method, target, headers, body)
    response = recorded.response
    assert (status, reason) == (response.status, response.reason)
    assert _names(got) == response.header_names()
    assert content == response.content
    assert dict(got)["Set-Cookie"] == "hadoop.auth=; Path=/; HttpOnly"


@pytest.mark.parametrize("name, index", [
    ("03-webhdfs-liststatus-spnego-401-then-200", 1),
    ("04-webhdfs-liststatus-spnego-preemptive", 0),
    ("20-python-requests-gssapi-webhdfs-liststatus", 1),
    ("91-webhdfs-liststatus-via-127.0.0.1", 1),
    ("06-webhdfs-getfilestatus-missing-path", 1),
    ("11-rm-app-spnego-401-then-200", 1),
])  # fmt: skip
def test_a_token_gets_the_recorded_answer(servers, name, index):
    nn, rm = servers
    recorded = _recorded(name, index)
    server = rm if recorded.server_port == 18088 else nn
    method, target, _ = recorded.request.first_line.split()
    status, reason, got, content = _ask(server.port, method, target, {"Authorization": _token()})
    response = recorded.response
    assert (status, reason) == (response.status, response.reason)
    assert _names(got) == response.header_names()
    assert dict(got)["WWW-Authenticate"].startswith("Negotiate ") and len(dict(got)["WWW-Authenticate"]) > 20
    cookie = dict(got)["Set-Cookie"]
    assert re.fullmatch(r'hadoop\.auth="u=alice&p=alice@FANOUT\.TEST&t=kerberos(-dt)?&e=\d{13}&s=[A-Za-z0-9+/]{43}="; '
                        r"Path=/; HttpOnly", cookie)
    assert ("t=kerberos-dt&" in cookie) == ("t=kerberos-dt&" in response.header("Set-Cookie"))
    if status != 200 or server is rm:
        assert content == response.content
    # and the cookie alone is enough next time, without a new one (05, 16)
    again = _ask(server.port, method, target, {"Cookie": cookie.split(";")[0]})
    cookie_only = recording("16" if server is rm else "05").exchanges[0].response
    assert again[0] == response.status and "Set-Cookie" not in dict(again[2])
    if again[0] == 200:
        assert _names(again[2]) == cookie_only.header_names()


def test_redirects_to_the_datanode_carry_a_delegation_token(servers):
    nn, _ = servers
    opened = _recorded("07", 1).response
    status, _, got, _ = _ask(nn.port, "GET", "/webhdfs/v1/tmp/hello.txt?op=OPEN", {"Authorization": _token()})
    assert (status, _names(got)) == (opened.status, opened.header_names())
    location = dict(got)["Location"]
    recorded_query = parse_qsl(urlsplit(opened.header("Location")).query, keep_blank_values=True)
    query = parse_qsl(urlsplit(location).query, keep_blank_values=True)
    assert [k for k, _ in query] == [k for k, _ in recorded_query]
    token = decode_delegation_token(dict(query)["delegation"])
    assert (token.kind, token.owner) == ("WEBHDFS delegation", "alice")
    target = location.split(str(nn.datanode_port), 1)[1]
    datanode = _ask(nn.datanode_port, "GET", target, {})
    recorded_dn = _recorded("07", 2).response
    assert (datanode[0], _names(datanode[2]), datanode[3]) == (200, recorded_dn.header_names(), b"hello-secure\n")
    # without the token the DataNode refuses, as recorded (09)
    missing = _recorded("09", 0).response
    bare = target.replace(f"delegation={dict(query)['delegation']}&", "")
    refused = _ask(nn.datanode_port, "GET", bare, {})
    assert (refused[0], _names(refused[2]), refused[3]) == (missing.status, missing.header_names(), missing.content)
    # CREATE: the two steps of 08
    created = _recorded("08", 0).response
    status, _, got, _ = _ask(nn.port, "PUT", "/webhdfs/v1/user/alice/created-by-webhdfs.txt?op=CREATE&overwrite=true",
                             {"Authorization": _token()})
    query = parse_qsl(urlsplit(dict(got)["Location"]).query, keep_blank_values=True)
    recorded_query = parse_qsl(urlsplit(created.header("Location")).query, keep_blank_values=True)
    assert (status, [k for k, _ in query]) == (created.status, [k for k, _ in recorded_query])
    stored = _ask(nn.datanode_port, "PUT", dict(got)["Location"].split(str(nn.datanode_port), 1)[1], {}, b"data")
    assert (stored[0], _names(stored[2])) == (201, _recorded("08", 1).response.header_names())
    assert nn.node("/user/alice/created-by-webhdfs.txt").owner == "alice"


def test_our_client_asks_like_the_recorded_python_clients(servers):
    """requests-gssapi, as our clients use it: the 401 first, then the token, with the
    request headers of the recorded Python clients (20, 21)."""
    _, rm = servers
    ResourceManagerRest(rm.url_as("localhost"), auth=kerberos_auth()).application("application_1796403851686_0002")
    recorded = recording("21").exchanges
    assert [list(r.headers) for r in rm.requests] == [[k for k, _ in e.request.headers] for e in recorded]
    assert rm.spnego.hows() == [("none", 401), ("token", 200)]


@pytest.mark.parametrize("text", [
    "org.apache.hadoop.fs.ChecksumException: Checksum failed at block 3",  # HDFS's, not a keytab's
    "java.io.FileNotFoundException: File does not exist: /user/alice/x",
    "",
])  # fmt: skip
def test_texts_that_are_not_about_kerberos(text):
    assert kerberos.classify(text) is None
