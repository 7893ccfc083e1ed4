#!/bin/sh
# exports.sh HEADER...: the names libferry exports, derived from its
# installed headers: every function declared (not static inline, not a
# typedef, not a member of a struct) and every object declared extern, one
# name per line. libferry.la links with -export-symbols on this list, so the
# library exports exactly what its headers promise and nothing else.
awk '
    # preprocessor lines, and the extern "C" braces of C++ guards
    /^[ \t]*#[ \t]*ifdef[ \t]+__cplusplus/ { skip = 1; next }
    skip && /^[ \t]*#[ \t]*endif/ { skip = 0; next }
    skip { next }
    /^[ \t]*#/ { while ($0 ~ /\\$/ && (getline) > 0) {} ; next }
    { text = text " " $0 }
    END {
        # comments out, then one statement at a time at brace depth 0
        gsub(/\/\*([^*]|\*+[^*\/])*\*+\//, " ", text)
        gsub(/\/\/[^\n]*/, " ", text)
        depth = 0; stmt = ""
        n = length(text)
        for (i = 1; i <= n; i++) {
            c = substr(text, i, 1)
            if (c == "{") {
                if (depth == 0) { body_of = stmt }
                depth++
            } else if (c == "}") {
                depth--
                if (depth == 0) { stmt = "" ; after_body = 1 }
            } else if (depth == 0 && c == ";") {
                if (!after_body) emit(stmt)
                stmt = ""; after_body = 0
            } else if (depth == 0) {
                stmt = stmt c
            }
        }
    }
    function emit(s,   m) {
        sub(/^[ \t]+/, "", s)
        if (s ~ /^(static|typedef)[ \t]/ || s == "") return
        if (s ~ /^extern[ \t]/ && s !~ /\(/) {
            # an object: the last identifier before [] or the end
            sub(/\[[^]]*\][ \t]*$/, "", s); sub(/[ \t]+$/, "", s)
            if (match(s, /[A-Za-z_][A-Za-z0-9_]*$/)) print substr(s, RSTART, RLENGTH)
            return
        }
        # a function: the identifier right before the first (
        if (match(s, /[A-Za-z_][A-Za-z0-9_]*[ \t]*\(/)) {
            m = substr(s, RSTART, RLENGTH); sub(/[ \t]*\($/, "", m)
            if (m !~ /^__attribute__$/) print m
        }
    }
' "$@" | sort -u
