<?php
// memory_limit: 32M
// A string grown with .= until the limit (realloc of a huge block).
echo "start\n";
$s = '';
for ($i = 0; ; $i++) {
    $s .= str_repeat(chr(65 + $i % 26), 100000);
}
