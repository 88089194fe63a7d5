// guestmem's benchmark binary: run with --benchmark_format=json for
// bench/report. Benchmarks are named BM_<Operation>/<impl>/<size>.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
