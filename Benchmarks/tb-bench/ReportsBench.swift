func reportsBenchmark(_ arguments: [String]) { print("reports benchmark: not written yet") }
