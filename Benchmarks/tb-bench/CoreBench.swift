func coreBenchmark(_ arguments: [String]) { print("core benchmark: not written yet") }
