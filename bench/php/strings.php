<?php
// Heavy string building and parsing: build CSV, JSON, templated text and
// a key=value log; parse them back with explode, str_getcsv, json_decode,
// preg_match_all and substr walks; transform with str_replace and sprintf.
// Prints one checksum line; the benchmark compares it across allocators.

$seed = 11;
$rand = function () use (&$seed) {
    $seed = ($seed * 1103515245 + 12345) & 0x7fffffff;
    return $seed;
};
$words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa',
          'lambda', 'mu', 'nu', 'xi', 'omicron', 'pi', 'rho', 'sigma', 'tau', 'upsilon'];

$out = [];
for ($round = 0; $round < 5; $round++) {
    // 1. CSV built line by line, then parsed.
    $csv = '';
    for ($i = 0; $i < 60000; $i++) {
        $csv .= $i . ',' . $words[$rand() % 20] . ',"' . $words[$rand() % 20] . ' ' . $words[$rand() % 20]
              . '",' . ($rand() % 10000) / 100 . "\n";
    }
    $rows = 0; $total = 0.0; $byWord = [];
    foreach (explode("\n", rtrim($csv)) as $line) {
        $f = str_getcsv($line);
        $rows++;
        $total += (float)$f[3];
        $byWord[$f[1]] = ($byWord[$f[1]] ?? '') . substr($f[2], 0, 3);
    }

    // 2. JSON documents encoded and decoded.
    $docs = [];
    for ($i = 0; $i < 15000; $i++) {
        $doc = ['id' => $i, 'title' => ucfirst($words[$rand() % 20]) . ' ' . $words[$rand() % 20],
                'tags' => array_slice($words, $rand() % 15, 5), 'body' => str_repeat($words[$i % 20] . ' ', 20)];
        $docs[] = json_encode($doc);
    }
    $blob = '[' . implode(',', $docs) . ']';
    $decoded = json_decode($blob, true);
    $tagCount = [];
    foreach ($decoded as $d) foreach ($d['tags'] as $t) $tagCount[$t] = ($tagCount[$t] ?? 0) + 1;

    // 3. Templating with sprintf/str_replace/strtr.
    $tpl = "<li class=\"{cls}\"><a href=\"/item/{id}\">{title}</a> <span>{n}</span></li>\n";
    $html = '';
    foreach ($decoded as $d) {
        $html .= strtr($tpl, ['{cls}' => $d['id'] % 2 ? 'odd' : 'even', '{id}' => $d['id'],
                              '{title}' => htmlspecialchars($d['title']), '{n}' => sprintf('%05.1f', $d['id'] / 3)]);
    }
    $html = str_replace('class="odd"', 'class="o"', $html);

    // 4. A key=value log scanned with regular expressions.
    $log = '';
    for ($i = 0; $i < 50000; $i++) {
        $log .= sprintf("ts=%d level=%s user=%s msg=\"%s %s\"\n", 1700000000 + $i,
                        ['info', 'warn', 'error'][$rand() % 3], $words[$rand() % 20],
                        $words[$rand() % 20], $words[$rand() % 20]);
    }
    preg_match_all('/level=(\w+) user=(\w+) msg="([^"]*)"/', $log, $m, PREG_SET_ORDER);
    $levels = [];
    foreach ($m as $hit) $levels[$hit[1]][$hit[2]] = ($levels[$hit[1]][$hit[2]] ?? 0) + strlen($hit[3]);

    // 5. Byte-level tokenizer over the HTML.
    $tokens = 0; $len = strlen($html); $pos = 0; $names = [];
    while ($pos < $len) {
        $lt = strpos($html, '<', $pos);
        if ($lt === false) break;
        $gt = strpos($html, '>', $lt);
        $tag = substr($html, $lt + 1, $gt - $lt - 1);
        $sp = strpos($tag, ' ');
        $name = $sp === false ? $tag : substr($tag, 0, $sp);
        $names[$name] = ($names[$name] ?? 0) + 1;
        $tokens++;
        $pos = $gt + 1;
    }

    // 6. Word frequencies over everything, lower/upper case churn.
    $freq = array_count_values(str_word_count(strtolower(substr($log, 0, 1500000)), 1));
    arsort($freq);
    $up = strtoupper(implode(' ', array_keys($byWord)));

    $out[] = md5(json_encode([$rows, round($total, 2), count($byWord), $tagCount, strlen($html),
        count($m), $levels, $tokens, $names, array_slice($freq, 0, 5), $up]));
}
echo "strings ", md5(implode(",", $out)), "\n";
