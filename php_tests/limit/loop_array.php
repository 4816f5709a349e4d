<?php
// memory_limit: 32M
// Growth in a loop: an array of strings grows until the limit.
register_shutdown_function(function () {
    $e = error_get_last();
    echo "shutdown: type=", $e['type'] ?? 'none', " line=", $e['line'] ?? 'none', "\n";
    echo "shutdown: ", preg_replace('/tried to allocate \d+ bytes/', 'tried to allocate M bytes', $e['message'] ?? ''), "\n";
});
echo "start\n";
$a = [];
while (true) {
    $a[] = str_repeat("y", 1000);
}
