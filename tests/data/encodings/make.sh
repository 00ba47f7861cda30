#!/bin/sh
# Regenerates the legacy-encoded test data from UTF-8 text with iconv, so that no file here
# is typed by hand. Each NAME.comment is a phrase for comments, each NAME.arg a word used as a
# resource argument (no blanks, no backslash byte, so every shell reads it as one word).
# Used by tests/check.rs and tests/encodings.rs.
set -eu
cd "$(dirname "$0")"
gen() { printf '%s' "$3" | iconv -f UTF-8 -t "$2" > "$1"; }
gen euc-kr.comment    EUC-KR     '두 노드간 하트비트 설정 (1초마다)'
gen euc-kr.arg        EUC-KR     '서비스'
# 表 is 0x95 0x5C in Shift-JIS: a backslash byte inside a comment.
gen shift-jis.comment SHIFT_JIS  'ハートビート設定の表'
gen shift-jis.arg     SHIFT_JIS  '設定'
gen latin1.comment    ISO-8859-1 'Paramètres réseau à vérifier'
gen latin1.arg        ISO-8859-1 'café'
gen gb2312.comment    GB2312     '心跳配置'
gen gb2312.arg        GB2312     '服务'
