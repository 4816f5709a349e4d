<?php
// memory_limit: 32M
// The limit is reached inside a shutdown function: the next one does not run.
register_shutdown_function(function () {
    echo "first shutdown function\n";
    $s = str_repeat("s", 256 << 20);
});
register_shutdown_function(function () {
    echo "second shutdown function\n";
});
echo "main done\n";
