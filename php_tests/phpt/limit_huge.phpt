--TEST--
memory_limit: one huge allocation is a fatal error naming the limit
--INI--
memory_limit=16M
--FILE--
<?php
register_shutdown_function(function () { echo "shutdown\n"; });
echo "before\n";
try {
    $s = str_repeat("x", 64 << 20);
} finally {
    echo "finally\n";
}
echo "not reached\n";
?>
--EXPECTF--
before

Fatal error: Allowed memory size of 16777216 bytes exhausted (tried to allocate %d bytes) in %s on line 5
shutdown
