"""docs/api.md §13 helpers: known-answer vectors for every hash, HMAC and encoding; time; bounds."""
import hashlib
import json
import time

import pytest

from picloud.sandbox import Status

from .jobs import body_json


def lua_value(run, expression, **options):
    return body_json(run(f"return {{{expression}}}", **options))[0]


def hex_of(run, expression):
    return lua_value(run, f"encoding.hex_encode({expression})")


@pytest.mark.parametrize("expression, digest", [
    ('crypto.sha1("")', "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
    ('crypto.sha1("abc")', "a9993e364706816aba3e25717850c26c9cd0d89d"),
    ('crypto.sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")', "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
    ('crypto.sha256("")', "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ('crypto.sha256("abc")', "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ('crypto.sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")',
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    # RFC 2202 and RFC 4231, test case 2.
    ('crypto.hmac("sha1", "Jefe", "what do ya want for nothing?")', "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
    ('crypto.hmac("sha256", "Jefe", "what do ya want for nothing?")',
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    ('crypto.hmac("sha512", "Jefe", "what do ya want for nothing?")',
     "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
    # RFC 4231 test case 1: a binary key.
    ('crypto.hmac("sha256", string.rep("\\11", 20), "Hi There")',
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
])
def test_hash_and_hmac_vectors(run, expression, digest):
    assert hex_of(run, expression) == digest


def test_hashes_are_raw_bytes(run):
    assert lua_value(run, "#crypto.sha256('x'), #crypto.sha1('x'), #crypto.hmac('sha512', 'k', 'x')") == 32


@pytest.mark.parametrize("plain, encoded", [
    ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
])
def test_base64_rfc4648_vectors(run, plain, encoded):
    assert lua_value(run, f'encoding.base64_encode("{plain}")') == encoded
    assert lua_value(run, f'encoding.base64_decode("{encoded}")') == plain


def test_base64url_has_its_alphabet_and_no_padding(run):
    assert lua_value(run, 'encoding.base64url_encode("\\251\\255\\191")') == "-_-_"
    assert lua_value(run, 'encoding.base64_encode("\\251\\255\\191")') == "+/+/"
    assert lua_value(run, 'encoding.base64url_encode("f")') == "Zg"
    assert lua_value(run, 'encoding.base64url_decode("Zg") == "f" and encoding.base64url_decode("-_-_") == "\\251\\255\\191"') is True


def test_hex_is_lower_case_and_decodes_either_case(run):
    assert lua_value(run, 'encoding.hex_encode("\\0\\255\\16\\171")') == "00ff10ab"
    assert lua_value(run, 'encoding.hex_decode("00FF10ab") == "\\0\\255\\16\\171"') is True


def test_url_encoding_keeps_unreserved_characters_only(run):
    assert lua_value(run, 'encoding.url_encode("a b/c?d=e&f~g-h.i_j+k\\195\\188")') == "a%20b%2Fc%3Fd%3De%26f~g-h.i_j%2Bk%C3%BC"
    assert lua_value(run, 'encoding.url_decode("a%20b%2Fc+%C3%BC")') == "a b/c+ü"


@pytest.mark.parametrize("call", [
    'encoding.hex_decode("abc")', 'encoding.hex_decode("zz")', 'encoding.base64_decode("Zm9v!")',
    'encoding.base64_decode("Zm9vY")', 'encoding.base64url_decode("Zm9v+")', 'encoding.base64url_decode("a")',
    'encoding.url_decode("%zz")', 'encoding.url_decode("100%")', 'crypto.hmac("md5", "k", "s")',
    "crypto.random_bytes(1025)", "crypto.random_bytes(-1)", "crypto.random_bytes(1.5)", "crypto.sha256({})",
    "crypto.sha256()", "crypto.equals('a')", "time.iso('x')", "time.iso(1e300)",
])
def test_bad_input_raises_a_catchable_lua_error(run, call):
    result = body_json(run(f"local ok, err = pcall(function() return {call} end) return {{ok, type(err)}}"))
    assert result == [False, "string"]


def test_random_bytes_uuid_and_equals(run):
    result = body_json(run(
        "local a, b = crypto.random_bytes(1024), crypto.random_bytes(1024) "
        "return {#a, a ~= b, #crypto.random_bytes(0), crypto.uuid(), crypto.uuid() ~= crypto.uuid(), "
        "crypto.equals('abc', 'abc'), crypto.equals('abc', 'abd'), crypto.equals('abc', 'ab')}"
    ))
    assert result[:3] == [1024, True, 0]
    assert len(result[3]) == 36 and result[3][14] == "4"
    assert result[4:] == [True, True, False, False]


def test_time_now_and_iso(run):
    before = time.time()
    now, iso_zero, iso_frac, iso_now = body_json(run("return {time.now(), time.iso(0), time.iso(1.5), time.iso()}"))
    assert before - 1 <= now <= time.time() + 1 and round(now, 3) == now
    assert iso_zero == "1970-01-01T00:00:00.000Z"
    assert iso_frac == "1970-01-01T00:00:01.500Z"
    assert iso_now.endswith("Z") and len(iso_now) == 24


def test_hashing_a_mebibyte_costs_little_of_the_instruction_budget(run):
    outcome = run(
        "local s = string.rep('a', 1024 * 1024) local h "
        "for i = 1, 20 do h = crypto.sha256(s) end return encoding.hex_encode(h)"
    )
    assert outcome.status is Status.OK
    assert outcome.response.body.decode() == hashlib.sha256(b"a" * 1024 * 1024).hexdigest()
    # A pure-Lua SHA-256 would need hundreds of millions of instructions.
    assert outcome.usage["instructions"] < 2_000_000


def test_results_over_max_string_bytes_end_the_run(run):
    outcome = run("return pcall(encoding.hex_encode, string.rep('a', 3000))", max_string_bytes=4096)
    assert outcome.status is Status.LIMIT_EXCEEDED and outcome.limit == "max_string_bytes"


def test_helpers_are_plain_lua_values_with_nothing_of_the_host(run):
    result = body_json(run(
        "local seen = {} for _, lib in ipairs({crypto, encoding, time}) do "
        "  for k, v in pairs(lib) do seen[#seen + 1] = type(v) .. ':' .. tostring(getmetatable(v)) end "
        "  seen[#seen + 1] = tostring(getmetatable(lib)) end "
        "return {seen, type(crypto.sha256('x')), type(crypto.equals('a', 'a')), type(time.now())}"
    ))
    kinds, hash_type, equals_type, now_type = result
    assert set(kinds) == {"function:nil", "nil"}
    assert (hash_type, equals_type, now_type) == ("string", "boolean", "number")


def test_each_run_gets_its_own_helper_tables(run):
    assert body_json(run("crypto.sha256 = nil encoding = nil return {1}")) == [1]
    assert json.loads(run("return {type(crypto.sha256), type(encoding)}").response.body) == ["function", "table"]
