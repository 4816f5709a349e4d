<?php
// memory_limit: 32M
// The limit is reached inside a destructor during unset().
class Hog {
    public function __destruct() {
        echo "destructor start\n";
        $x = [];
        while (true) { $x[] = str_repeat("d", 10000); }
    }
}
$h = new Hog;
unset($h);
echo "not reached\n";
