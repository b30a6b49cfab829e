// tb-bench: benchmarks as a program, never timed assertions in the test suite.
// Usage: tb-bench core [--users N] ... | tb-bench reports [--files N] ...
let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "core": coreBenchmark(Array(arguments.dropFirst()))
case "reports": reportsBenchmark(Array(arguments.dropFirst()))
default:
    print("usage: tb-bench core|reports [options]")
}
