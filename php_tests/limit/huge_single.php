<?php
// memory_limit: 32M
// One allocation far above the limit: the fatal error names this line.
// Shutdown functions run; `finally` does not; buffered output is flushed.
register_shutdown_function(function () {
    echo "shutdown function ran, limit ", ini_get('memory_limit'), "\n";
});
ob_start();
echo "buffered before the error\n";
try {
    $s = str_repeat("x", 64 << 20);
    echo "not reached\n";
} finally {
    echo "finally ran\n";
}
echo "not reached either\n";
