<?php
// memory_limit: 32M
// A single request for far more than the machine has (2 TiB): still the
// memory_limit message, not "Out of memory".
echo "start\n";
$s = str_repeat("ab", 1 << 40);
echo "not reached\n";
