// RFC 4514 distinguished names: parsing and re-serialisation.

public struct DNParseError: Error, Sendable, CustomStringConvertible {
    public var input: String
    public var offset: Int
    public var reason: String
    public var description: String { "invalid DN at byte \(offset): \(reason)" }
}

public struct DN: Sendable, Hashable {
    public var rdns: [[AVA]]
    public struct AVA: Sendable, Hashable {
        public var type: String
        public var value: String
        public init(type: String, value: String) { self.type = type; self.value = value }
    }
    public init(rdns: [[AVA]]) { self.rdns = rdns }
    public init(parsing text: String) throws { fatalError("not yet") }
    public var string: String { fatalError("not yet") }
    public var normalized: String { fatalError("not yet") }
    public var parent: DN? { fatalError("not yet") }
}
