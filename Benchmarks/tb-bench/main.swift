// tb-bench: benchmarks as a program, never timed assertions in the test suite.
// Usage: tb-bench core [--users N] ... | tb-bench reports [--files N] ...
let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "core": coreBenchmark(Array(arguments.dropFirst()))
case "reports": reportsBenchmark(Array(arguments.dropFirst()))
default:
    print("usage: tb-bench core|reports [options]")
}

/// Deterministic pseudo-random numbers (SplitMix64), for both generated worlds.
struct BenchRNG {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
}
