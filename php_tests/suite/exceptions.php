<?php
// Exceptions: deep chains, traces, finally, rethrow, errors as exceptions.
function thrower(int $depth) {
    if ($depth === 0) {
        throw new RuntimeException("bottom", 42);
    }
    try {
        thrower($depth - 1);
    } catch (Exception $e) {
        throw new LogicException("level $depth", $depth, $e);
    }
}
try {
    thrower(200);
} catch (LogicException $e) {
    $n = 0;
    for ($p = $e; $p; $p = $p->getPrevious()) {
        $n++;
    }
    echo "chain length: ", $n, " top: ", $e->getMessage(), " trace frames: ", count($e->getTrace()), "\n";
}

$caught = 0;
$finally = 0;
for ($i = 0; $i < 100000; $i++) {
    try {
        try {
            if ($i % 2) {
                throw new InvalidArgumentException(str_repeat("m", $i % 64));
            }
        } finally {
            $finally++;
        }
    } catch (InvalidArgumentException $e) {
        $caught += strlen($e->getMessage());
    }
}
echo "caught bytes: ", $caught, " finally: ", $finally, "\n";

function withFinally(): string {
    try {
        return "from try";
    } finally {
        echo "finally before return\n";
    }
}
echo withFinally(), "\n";

try {
    intdiv(1, 0);
} catch (DivisionByZeroError $e) {
    echo get_class($e), ": ", $e->getMessage(), "\n";
}
try {
    strlen();
} catch (ArgumentCountError $e) {
    echo get_class($e), ": ", $e->getMessage(), "\n";
}
try {
    null->method();
} catch (Error $e) {
    echo get_class($e), ": ", $e->getMessage(), "\n";
}
set_error_handler(function (int $no, string $str) {
    throw new ErrorException($str, 0, $no);
});
try {
    $arr = [];
    echo $arr['missing'];
} catch (ErrorException $e) {
    echo "converted: ", $e->getMessage(), "\n";
}
restore_error_handler();

class MyException extends Exception {
    public array $payload;
    public function __construct(string $m) {
        parent::__construct($m);
        $this->payload = range(1, 1000);
    }
}
$kept = [];
for ($i = 0; $i < 2000; $i++) {
    try {
        throw new MyException("e$i");
    } catch (MyException $e) {
        $kept[] = $e;
    }
}
echo "kept exceptions: ", count($kept), " ", array_sum(array_map(fn($e) => count($e->payload), $kept)), "\n";
echo "string form: ", get_class($kept[5]), " ", $kept[5]->getMessage(), " line ", $kept[5]->getLine(), " ", basename($kept[5]->getFile()), "\n";
