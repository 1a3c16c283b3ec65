"""check_compile: compile-only checks in the web process."""
from picloud.sandbox import CompileError, check_compile


def test_valid_source_compiles():
    assert check_compile('local x = 1\nreturn "hello " .. x') is None


def test_syntax_error_has_line_and_message():
    error = check_compile("local x = 1\nlocal y = = 2\n")
    assert isinstance(error, CompileError)
    assert error.line == 2
    assert "unexpected symbol" in error.message
    assert not error.message.startswith("source:")


def test_unclosed_block_points_at_the_end():
    error = check_compile("function f()\n  return 1\n")
    assert error.line == 3
    assert "'end' expected" in error.message


def test_compiling_never_runs_the_source():
    # An infinite loop compiles fine and returns at once.
    assert check_compile("while true do end") is None


def test_binary_chunk_is_refused():
    error = check_compile("\x1bLua\x54\x00\x19\x93\r\n\x1a\n")
    assert error is not None
    assert "binary" in error.message


def test_deeply_nested_source_is_a_clean_error():
    error = check_compile("return " + "(" * 10_000 + "1" + ")" * 10_000)
    assert error is not None
    assert "overflow" in error.message or "levels" in error.message
    assert "traceback" not in error.message
