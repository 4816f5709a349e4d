<?php
// memory_limit: 32M
// The limit is reached inside an output-buffer callback.
register_shutdown_function(function () {
    echo "shutdown function ran\n";
});
ob_start(function (string $buffer, int $phase): string {
    $big = str_repeat($buffer, 1 << 20);
    return "callback returned " . strlen($big) . "\n";
});
echo str_repeat("0123456789abcdef", 8), "\n";
ob_end_flush();
echo "not reached\n";
