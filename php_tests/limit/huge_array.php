<?php
// memory_limit: 32M
// A huge packed array allocated in one go.
echo "start\n";
$a = array_fill(0, 1 << 24, 7);
echo "not reached\n";
