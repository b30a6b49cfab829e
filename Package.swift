// swift-tools-version: 6.1
import PackageDescription

// Warnings are errors in this package's own targets only (dependencies keep theirs), in every
// build: scripts/test.sh's `swift build` and `swift test` then share one set of flags.
let strict: [SwiftSetting] = [.swiftLanguageMode(.v6), .unsafeFlags(["-warnings-as-errors"])]

let package = Package(
    name: "takeover-bridge",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "takeover-bridge", targets: ["takeover-bridge"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // libldap and libsasl2 through pkg-config; the shim header holds the prefixed helpers.
        .systemLibrary(
            name: "CLDAP",
            pkgConfig: "ldap",
            providers: [.apt(["libldap-dev", "libsasl2-dev"])]
        ),
        // prctl(2) for the process protections at start (Swift cannot call a variadic C function).
        .systemLibrary(name: "CHardening", path: "Sources/CHardening"),
        // Pure LDAP text syntax: RFC 4514 DNs, RFC 4515 filters, RFC 2849 LDIF. No C.
        .target(name: "LDAPSyntax", swiftSettings: strict),
        // The only module that touches libldap's pointers.
        .target(name: "LDAPClient", dependencies: ["CLDAP", "LDAPSyntax"], swiftSettings: strict),
        // Pure reconciliation: users, connections, reports, bindings in; a Plan out.
        .target(name: "TakeoverCore", dependencies: ["LDAPSyntax"], swiftSettings: strict),
        // Report files -> DeviceReport values.
        .target(name: "DeviceReports", dependencies: ["TakeoverCore", "LDAPSyntax"], swiftSettings: strict),
        // Glue: configuration, directory <-> model, apply, state.
        .target(
            name: "TakeoverBridge",
            dependencies: [
                "LDAPClient", "LDAPSyntax", "TakeoverCore", "DeviceReports", "CHardening",
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "takeover-bridge",
            dependencies: [
                "TakeoverBridge",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // Benchmarks are executables, never timed assertions in the test suite.
        .executableTarget(
            name: "tb-bench",
            dependencies: ["TakeoverCore", "DeviceReports", "LDAPSyntax"],
            path: "Benchmarks/tb-bench",
            swiftSettings: strict
        ),
        // A search-and-modify loop run under valgrind by scripts/leak-check.sh.
        .executableTarget(
            name: "ldap-leak-loop",
            dependencies: ["LDAPClient", "LDAPTestSupport"],
            path: "Tests/LeakLoop",
            swiftSettings: strict
        ),
        // Helpers shared by the test targets (the seeded generator of the property tests).
        .target(name: "TestSupport", path: "Tests/TestSupport", swiftSettings: strict),
        // Test support for every suite that talks to a server or runs a process: one server
        // type for the three test directories (OpenLDAP, 389 DS, Samba AD), shared or
        // private; one process runner; one scenario builder; the built binary.
        .target(name: "LDAPTestSupport", dependencies: ["LDAPClient", "LDAPSyntax"], path: "Tests/LDAPTestSupport",
                swiftSettings: strict),
        // The same end-to-end cases on the three servers, through the built binary.
        .testTarget(name: "CrossServerTests", dependencies: ["LDAPTestSupport", "LDAPClient"], swiftSettings: strict),
        .testTarget(name: "LDAPSyntaxTests", dependencies: ["LDAPSyntax", "TestSupport"], swiftSettings: strict),
        // Property tests of the shared primitives outside LDAPSyntax (civil time, JSON, quoting); no server.
        .testTarget(name: "PrimitivesTests",
                    dependencies: ["TestSupport", "TakeoverCore", "DeviceReports", "TakeoverBridge"],
                    swiftSettings: strict),
        .testTarget(name: "LDAPClientTests", dependencies: ["LDAPClient", "LDAPSyntax", "LDAPTestSupport"], swiftSettings: strict),
        .testTarget(name: "TakeoverCoreTests", dependencies: ["TestSupport", "TakeoverCore", "LDAPSyntax"], resources: [.copy("Golden")], swiftSettings: strict),
        .testTarget(name: "DeviceReportsTests", dependencies: ["TestSupport", "DeviceReports", "TakeoverCore", "LDAPSyntax"], resources: [.copy("Fixtures")], swiftSettings: strict),
        // TakeoverBridge's suites that need no server: configuration, logfmt, state, secret
        // keys, the cleartext rule, the key table, file checks, the binary without a server.
        .testTarget(name: "TakeoverBridgeUnitTests", dependencies: ["LDAPTestSupport", "TestSupport", "TakeoverBridge", "LDAPSyntax", "TakeoverCore"], swiftSettings: strict),
        // TakeoverBridge against real slapd servers (private ones of its own), and the built binary.
        .testTarget(name: "TakeoverBridgeTests", dependencies: ["LDAPTestSupport", "TestSupport", "TakeoverBridge", "LDAPClient", "TakeoverCore"], resources: [.copy("Golden")], swiftSettings: strict),
    ]
)
