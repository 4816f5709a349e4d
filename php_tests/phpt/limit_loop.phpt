--TEST--
memory_limit: growth in a loop ends in the fatal error, error_get_last() sees it
--INI--
memory_limit=20M
--FILE--
<?php
register_shutdown_function(function () {
    $e = error_get_last();
    var_dump($e['type'] === E_ERROR, $e['line']);
    echo $e['message'], "\n";
});
$a = [];
while (true) { $a[] = str_repeat("l", 3000); }
?>
--EXPECTF--
Fatal error: Allowed memory size of 20971520 bytes exhausted (tried to allocate %d bytes) in %s on line 8
bool(true)
int(8)
Allowed memory size of 20971520 bytes exhausted (tried to allocate %d bytes)
