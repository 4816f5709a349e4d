<?php
// memory_limit: 32M
// Unbounded recursion: only the VM stack grows, page by page, until the limit.
function deeper(int $n): int { return deeper($n + 1) + 1; }
echo "start\n";
deeper(0);
