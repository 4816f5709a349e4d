<?php
// preg_* on large subjects: match_all, replace, replace_callback, split, grep.
$text = '';
for ($i = 0; $i < 100000; $i++) {
    $text .= "user$i@example" . ($i % 13) . ".org some words " . ($i * 7) . "\n";
}
echo "subject: ", strlen($text), "\n";
$n = preg_match_all('/(\w+)@(\w+)\.org/', $text, $m);
echo "match_all: ", $n, " ", $m[1][54321], " ", $m[2][54321], "\n";
$n = preg_match_all('/\d+/', $text, $m, PREG_OFFSET_CAPTURE);
echo "offsets: ", $n, " ", $m[0][1000][0], "@", $m[0][1000][1], "\n";
unset($m);
$r = preg_replace('/(\d+)/', '<$1>', $text);
echo "replace: ", strlen($r), " ", md5($r), "\n";
$r = preg_replace_callback('/user(\d+)/', fn($mm) => strtoupper(dechex((int) $mm[1])), $text);
echo "callback: ", strlen($r), " ", md5($r), "\n";
$parts = preg_split('/\s+/', $text, -1, PREG_SPLIT_NO_EMPTY);
echo "split: ", count($parts), " ", $parts[77777], "\n";
$g = preg_grep('/^user\d*7@/', $parts);
echo "grep: ", count($g), "\n";
echo "quote: ", preg_quote("a.b*c?d[e]"), "\n";
// Many distinct patterns: exercises PCRE's compiled-pattern cache.
$hits = 0;
for ($i = 0; $i < 5000; $i++) {
    $hits += preg_match("/user{$i}@example(\\d+)/", $text, $mm);
}
echo "distinct patterns: ", $hits, "\n";
echo "named: ", json_encode(preg_match('/(?<y>\d{4})-(?<m>\d\d)/', 'on 2024-06-xx', $mm) ? array_filter($mm, 'is_string', ARRAY_FILTER_USE_KEY) : null), "\n";
echo "utf8: ", preg_replace('/\p{Lu}/u', '_', "ÀbÇdÉf"), "\n";
var_dump(@preg_match('/(?:\D+|<\d+>)*[!?]/', str_repeat('foobar foobar foobar', 2000)));
echo "error: ", preg_last_error_msg(), "\n";
