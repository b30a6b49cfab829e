internal import CLDAP

public actor LDAPConnection {
    public static func connect(_ options: LDAPConnectionOptions) async throws -> LDAPConnection { fatalError("not yet") }
    public func bind(_ credentials: LDAPCredentials) async throws { fatalError("not yet") }
    public func whoAmI() async throws -> String { fatalError("not yet") }
    public func rootDSE(attributes: [String] = ["*", "+"]) async throws -> LDAPEntry { fatalError("not yet") }
    public func subschema() async throws -> LDAPEntry { fatalError("not yet") }
    /// Paged (RFC 2696) search. `handler` runs synchronously on the connection's queue for
    /// each entry as it arrives; throwing from it abandons the search and rethrows.
    public func search(base: String, scope: SearchScope, filter: String, attributes: [String],
                       pageSize: Int = 1000, sizeLimit: Int = 0, timeLimit: Int = 0,
                       handler: (LDAPEntry) throws -> Void) async throws -> SearchResult { fatalError("not yet") }
    public func add(dn: String, attributes: [(String, [String])]) async throws { fatalError("not yet") }
    public func delete(dn: String) async throws { fatalError("not yet") }
    public func modify(dn: String, _ modifications: [Modification]) async throws { fatalError("not yet") }
    public func modifyPipelined(_ requests: [ModifyRequest], window: Int = 64) async throws -> [Result<Void, LDAPError>] { fatalError("not yet") }
    public func close() { fatalError("not yet") }
}
