# Parser for tests/scenarios.txt, shared by the host (tests/hwkvm/run.sh, bash) and the
# in-guest /init (busybox ash): keep it POSIX sh. See tests/scenarios.txt for the format.
#
# hwkvm_parse_scenario LINE
#   returns 0 and sets SC_NAME SC_EXIT SC_OUT SC_STREAM SC_ARGS SC_SIG SC_SIG_AFTER for a
#   scenario line (SC_STREAM: stdout, stderr or any; SC_OUT without its stream prefix;
#   SC_SIG and SC_SIG_AFTER: the signal name and seconds of a leading @SIG@SECS word,
#   which SC_ARGS no longer holds, or empty),
#   returns 1 for a blank or comment line,
#   returns 2 and sets SC_ERR for a malformed line.

hwkvm_trim() {
    # Strip leading and trailing whitespace from $1, print the result.
    set -- "${1#"${1%%[![:space:]]*}"}"
    printf '%s' "${1%"${1##*[![:space:]]}"}"
}

hwkvm_parse_scenario() {
    SC_NAME= SC_EXIT= SC_OUT= SC_STREAM=any SC_ARGS= SC_ERR= SC_SIG= SC_SIG_AFTER=
    _l=$(printf '%s' "$1" | tr -d '\r')
    _t=$(hwkvm_trim "$_l")
    case "$_t" in '' | '#'*) return 1 ;; esac
    # A line ending in " |" (trailing whitespace stripped by an editor) has empty arguments.
    case "$_t" in *' |') _l="$_t " ;; esac
    case "$_l" in *' | '*' | '*' | '*) ;; *)
        SC_ERR="expected 4 fields separated by ' | ': $_t"
        return 2 ;;
    esac
    SC_NAME=$(hwkvm_trim "${_l%% | *}"); _l=${_l#* | }
    SC_EXIT=$(hwkvm_trim "${_l%% | *}"); _l=${_l#* | }
    SC_OUT=$(hwkvm_trim "${_l%% | *}"); _l=${_l#* | }
    case "$_l" in *' | '*)
        SC_ERR="more than 4 fields separated by ' | ': $_t"
        return 2 ;;
    esac
    SC_ARGS=$(hwkvm_trim "$_l")
    case "$SC_ARGS" in @*)
        _w=${SC_ARGS%%[[:space:]]*}
        SC_ARGS=$(hwkvm_trim "${SC_ARGS#"$_w"}")
        _w=${_w#@}
        SC_SIG=${_w%%@*}
        SC_SIG_AFTER=${_w#*@}
        case "$SC_SIG" in INT | QUIT | TERM | TSTP) ;; *)
            SC_ERR="scenario $SC_NAME: '@$_w': expected @INT@SECS, @QUIT@SECS, @TERM@SECS or @TSTP@SECS"
            return 2 ;;
        esac
        case "$SC_SIG_AFTER" in '' | *[!0-9.]* | *.*.* | .* | *.)
            SC_ERR="scenario $SC_NAME: '@$_w': SECS must be a number of seconds"
            return 2 ;;
        esac
        ;;
    esac
    case "$SC_OUT" in
    stdout:* | stderr:*)
        SC_STREAM=${SC_OUT%%:*}
        SC_OUT=$(hwkvm_trim "${SC_OUT#*:}")
        if [ -z "$SC_OUT" ]; then
            SC_ERR="scenario $SC_NAME: expected output names the $SC_STREAM stream but no text"
            return 2
        fi
        ;;
    esac
    case "$SC_NAME" in '' | *[!A-Za-z0-9._-]*)
        SC_ERR="bad scenario name '$SC_NAME' (letters, digits, '.', '_', '-')"
        return 2 ;;
    esac
    case "$SC_EXIT" in '' | *[!0-9]*)
        SC_ERR="scenario $SC_NAME: expected exit '$SC_EXIT' is not a number"
        return 2 ;;
    esac
    if [ "$SC_EXIT" -gt 255 ]; then
        SC_ERR="scenario $SC_NAME: expected exit $SC_EXIT is out of range 0-255"
        return 2
    fi
    for _a in $SC_ARGS; do
        case "$_a" in --kernel | --kernel=* | --rootfs | --rootfs=*)
            SC_ERR="scenario $SC_NAME: arguments must not name --kernel or --rootfs"
            return 2 ;;
        esac
    done
    return 0
}

# hwkvm_has_timeout ARGS...: true if a --timeout option comes before any "--".
hwkvm_has_timeout() {
    for _a in "$@"; do
        case "$_a" in
        --) return 1 ;;
        --timeout | --timeout=*) return 0 ;;
        esac
    done
    return 1
}
