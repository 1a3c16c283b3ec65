"""docs/api.md §4 host resolution and §6 route matching, as tables of pure cases."""
import pytest

from picloud.routing.match import (
    CATCH_ALL,
    LITERAL,
    PARAM,
    CompiledRoute,
    DomainTable,
    InvalidHost,
    InvalidPath,
    Match,
    MethodNotAllowed,
    claim_covers,
    explain_match,
    match_route,
    normalize_host,
    parse_path,
    path_shape,
    split_request_path,
    to_ascii_host,
)


@pytest.mark.parametrize(
    "raw, host",
    [
        ("Example.COM", "example.com"),
        ("example.com:8080", "example.com"),
        ("example.com.", "example.com"),
        ("example.com.:80", "example.com"),
        ("127.0.0.1:5000", "127.0.0.1"),
        ("[::1]:8080", "[::1]"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("", None),
        (None, None),
    ],
)
def test_request_hosts_are_normalised(raw, host):
    assert normalize_host(raw) == host


@pytest.mark.parametrize("bad", ["", ".", "a..b", "-a.com", "a-.com", "a b.com", "x" * 64 + ".com", "a*.com"])
def test_invalid_host_names_are_refused(bad):
    with pytest.raises(InvalidHost):
        to_ascii_host(bad)


DOMAINS = DomainTable.build(
    [
        ("example.com", 1),
        ("*.example.com", 2),
        ("*.deep.example.com", 3),
        ("exact.deep.example.com", 4),
        ("*.other.org", 5),
    ]
)


@pytest.mark.parametrize(
    "host, app_id",
    [
        ("example.com", 1),  # exact claim
        ("a.example.com", 2),  # wildcard
        ("a.b.example.com", 2),  # wildcard covers deeper names
        ("x.deep.example.com", 3),  # longest wildcard suffix wins
        ("exact.deep.example.com", 4),  # exact beats any wildcard
        ("deep.example.com", 2),  # *.deep... does not match deep... itself
        ("other.org", None),  # *.other.org does not match other.org
        ("notexample.com", None),  # a suffix must start at a label boundary
        ("unknown.net", None),
        (None, None),
    ],
)
def test_host_resolution(host, app_id):
    assert DOMAINS.resolve(host) == app_id


@pytest.mark.parametrize(
    "claim, route_host, covered",
    [
        ("api.example.com", "api.example.com", True),
        ("api.example.com", "www.example.com", False),
        ("*.example.com", "api.example.com", True),
        ("*.example.com", "a.b.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "*.example.com", True),
        ("*.example.com", "*.a.example.com", True),
        ("api.example.com", "*.example.com", False),
    ],
)
def test_claims_cover_route_hosts(claim, route_host, covered):
    assert claim_covers(claim, route_host) is covered


def test_paths_parse_into_segments():
    assert parse_path("/") == ()
    assert parse_path("/users/:id/files/*rest") == (
        (LITERAL, "users"),
        (PARAM, "id"),
        (LITERAL, "files"),
        (CATCH_ALL, "rest"),
    )
    assert parse_path("/caf%C3%A9") == ((LITERAL, "café"),)
    assert parse_path("/a/") == parse_path("/a")


@pytest.mark.parametrize("bad", ["", "users", "/a//b", "/*rest/more", "/:", "/:1x", "/:a/:a", "/a b", 5, None])
def test_bad_paths_are_refused(bad):
    with pytest.raises(InvalidPath):
        parse_path(bad)


def test_path_shape_ignores_parameter_names():
    assert path_shape(parse_path("/users/:id")) == path_shape(parse_path("/users/:name"))
    assert path_shape(parse_path("/users/:id")) != path_shape(parse_path("/users/*id"))
    assert path_shape(parse_path("/users/:id")) != path_shape(parse_path("/posts/:id"))


def test_request_paths_are_split_and_percent_decoded():
    assert split_request_path("/") == ()
    assert split_request_path("/a/b/") == ("a", "b")
    assert split_request_path("/files/a%2Fb/caf%C3%A9") == ("files", "a/b", "café")


def route(route_id, method, path, host=None):
    return CompiledRoute(id=route_id, method=method, segments=parse_path(path), host=host, script_id=route_id)


ROUTES = [
    route(1, "GET", "/users/:id"),
    route(2, "GET", "/users/me"),
    route(3, "*", "/users/:id"),
    route(4, "POST", "/users"),
    route(5, "GET", "/files/*rest"),
    route(6, "GET", "/files/readme"),
    route(7, "GET", "/users/:id", host="api.example.com"),
    route(8, "GET", "/wild", host="*.example.com"),
    route(9, "GET", "/wild"),
    route(10, "DELETE", "/things/:id"),
    route(11, "PUT", "/things/:id"),
    route(12, "HEAD", "/probe"),
    route(13, "GET", "/probe"),
]


@pytest.mark.parametrize(
    "method, host, path, route_id, params",
    [
        ("GET", "example.com", "/users/me", 2, {}),  # literal beats parameter
        ("GET", "example.com", "/users/42", 1, {"id": "42"}),  # exact method beats *
        ("PATCH", "example.com", "/users/42", 3, {"id": "42"}),  # * answers any method
        ("GET", "api.example.com", "/users/42", 7, {"id": "42"}),  # host-specific route wins
        ("GET", "api.example.com", "/users/me", 7, {"id": "me"}),  # ...even over a more specific path
        ("GET", "example.com", "/files", 5, {"rest": ""}),  # catch-all matches zero segments
        ("GET", "example.com", "/files/a/b", 5, {"rest": "a/b"}),
        ("GET", "example.com", "/files/readme", 6, {}),  # literal beats catch-all
        ("GET", "example.com", "/users/42/", 1, {"id": "42"}),  # trailing slash ignored
        ("HEAD", "example.com", "/users/42", 1, {"id": "42"}),  # HEAD falls back to GET
        ("HEAD", "example.com", "/probe", 12, {}),  # an explicit HEAD route wins
        ("GET", "a.example.com", "/wild", 8, {}),  # wildcard route host beats host null
        ("GET", "elsewhere.org", "/wild", 9, {}),
        ("GET", "example.com", "/users/a%2Fb", 1, {"id": "a/b"}),  # params percent-decoded
    ],
)
def test_route_matching(method, host, path, route_id, params):
    result = match_route(ROUTES, method, host, split_request_path(path))
    assert isinstance(result, Match)
    assert result.route.id == route_id
    assert result.params == params


def test_no_path_match_is_none():
    assert match_route(ROUTES, "GET", "example.com", ("nothing", "here")) is None
    assert match_route([], "GET", "example.com", ()) is None


def test_path_match_without_method_lists_allowed_methods():
    result = match_route(ROUTES, "GET", "example.com", ("things", "1"))
    assert isinstance(result, MethodNotAllowed)
    assert result.allow == ("PUT", "DELETE")
    result = match_route(ROUTES, "DELETE", "example.com", ("users",))
    assert result.allow == ("POST",)
    # GET implies HEAD in Allow, since HEAD falls back to GET.
    result = match_route(ROUTES, "POST", "example.com", ("files", "readme"))
    assert result.allow == ("GET", "HEAD")


def test_routes_for_another_host_do_not_match():
    routes = [route(1, "GET", "/only", host="api.example.com")]
    assert match_route(routes, "GET", "www.example.com", ("only",)) is None


# Explaining a match (the dashboard's "Which app answers this URL?") --------------------


def compiled(route_id, method, path, host=None):
    return CompiledRoute(id=route_id, method=method, segments=parse_path(path), host=host, script_id=route_id)


def test_the_explanation_picks_the_route_match_route_picks_and_says_why_others_lost():
    routes = [
        compiled(1, "*", "/orders/:id"),
        compiled(2, "GET", "/orders/:id"),
        compiled(3, "GET", "/orders/new"),
        compiled(4, "GET", "/orders/:id", host="shop.example.com"),
        compiled(5, "GET", "/files/*rest"),
        compiled(6, "POST", "/orders/:id", host="other.example.com"),
    ]
    parts = split_request_path("/orders/7")
    verdicts = explain_match(routes, "GET", "shop.example.com", parts)
    assert match_route(routes, "GET", "shop.example.com", parts).route.id == 4
    assert [v.route.id for v in verdicts if v.chosen] == [4]
    reasons = {v.route.id: v.reason for v in verdicts}
    assert verdicts[0].chosen and verdicts[0].params == {"id": "7"}
    assert "names this host" in reasons[2] and "names this host" in reasons[1]
    assert reasons[3] == "its path does not match"
    assert reasons[5] == "its path does not match"
    assert reasons[6] == "answers only on other.example.com"


def test_the_explanation_names_specificity_and_method_as_the_tie_breakers():
    routes = [compiled(1, "*", "/a/:x"), compiled(2, "GET", "/a/:x"), compiled(3, "GET", "/a/*rest")]
    verdicts = {v.route.id: v for v in explain_match(routes, "GET", "h", split_request_path("/a/b"))}
    assert verdicts[2].chosen and verdicts[2].reason == "the best of 3 routes that match"
    assert verdicts[1].reason == "'*' loses to a route for the exact method"
    assert "more specific" in verdicts[3].reason
    head = {v.route.id: v for v in explain_match([compiled(1, "HEAD", "/"), compiled(2, "GET", "/")], "HEAD", "h", ())}
    assert head[1].chosen and "HEAD falls back to GET" in head[2].reason


def test_a_route_with_the_path_but_not_the_method_says_so():
    [verdict] = explain_match([compiled(1, "POST", "/a")], "GET", "h", ("a",))
    assert not verdict.chosen and verdict.reason == "its path matches, but it answers POST, not GET"


def test_the_claim_for_a_host_tells_exact_from_wildcard():
    table = DomainTable.build([("shop.example.com", 1), ("*.example.com", 2), ("*.b.example.com", 3)])
    assert table.claim_for("shop.example.com") == ("shop.example.com", 1)
    assert table.claim_for("x.b.example.com") == ("*.b.example.com", 3)
    assert table.claim_for("x.example.com") == ("*.example.com", 2)
    assert table.claim_for("example.com") is None and table.resolve("example.com") is None


def test_a_compiled_route_shows_its_path_as_written():
    assert compiled(1, "GET", "/files/:kind/*rest").path == "/files/:kind/*rest"
    assert compiled(1, "GET", "/").path == "/"
