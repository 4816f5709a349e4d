<?php
// memory_limit: 32M
// The limit is reached inside a fiber.
register_shutdown_function(function () {
    echo "shutdown function ran\n";
});
$fiber = new Fiber(function (int $chunk): void {
    $got = Fiber::suspend('suspended once');
    echo "resumed with $got\n";
    $data = [];
    try {
        while (true) {
            $data[] = str_repeat("f", $chunk);
        }
    } finally {
        echo "fiber finally ran\n";
    }
});
echo $fiber->start(4096), "\n";
$fiber->resume('go');
echo "not reached\n";
