// Loopback stand-ins for hostile servers: a fake LDAP server that records
// every connection and bind that reaches it (and can answer like a real server, or stay
// silent), and a proxy in front of the real test slapd that answers every write with a
// referral of the test's choosing. The proxy is what lets a test send referral URLs that
// slapd itself refuses to configure (a trailing comma, a space, a control character).
//
// Only BER framing is implemented (RFC 4511 section 5.1: each LDAPMessage is one
// SEQUENCE with a definite length), plus the few results these stand-ins send.

import Foundation
import LDAPTestSupport

#if canImport(Glibc)
import Glibc
#endif

// MARK: - BER framing

enum LDAPWire {
    /// The length of the first complete LDAPMessage in `buffer`; nil while incomplete;
    /// -1 when the bytes are not an LDAPMessage.
    static func messageLength(_ buffer: [UInt8]) -> Int? {
        guard buffer.count >= 2 else { return nil }
        guard buffer[0] == 0x30 else { return -1 }
        guard let (length, header) = lengthField(buffer, at: 1) else { return buffer.count < 6 ? nil : -1 }
        let total = 1 + header + length
        return buffer.count >= total ? total : nil
    }

    /// (content length, bytes the length field took) at `offset`; nil when incomplete or indefinite.
    static func lengthField(_ buffer: [UInt8], at offset: Int) -> (Int, Int)? {
        guard offset < buffer.count else { return nil }
        let first = buffer[offset]
        if first < 0x80 { return (Int(first), 1) }
        let count = Int(first & 0x7F)
        guard count >= 1, count <= 4, offset + count < buffer.count else { return nil }
        var length = 0
        for i in 1...count { length = length << 8 | Int(buffer[offset + i]) }
        return (length, 1 + count)
    }

    /// The raw messageID INTEGER (tag, length and value) and the protocolOp tag.
    static func idAndOperation(_ message: [UInt8]) -> (id: [UInt8], operation: UInt8)? {
        guard let (_, header) = lengthField(message, at: 1) else { return nil }
        let idStart = 1 + header
        guard idStart + 2 <= message.count, message[idStart] == 0x02 else { return nil }
        let idLength = Int(message[idStart + 1])
        let opStart = idStart + 2 + idLength
        guard idLength < 0x80, opStart < message.count else { return nil }
        return (Array(message[idStart..<opStart]), message[opStart])
    }

    /// The bind DN of a BindRequest (version INTEGER, name OCTET STRING, ...).
    static func bindName(_ message: [UInt8]) -> String? {
        guard let (id, operation) = idAndOperation(message), operation == 0x60,
              let (_, header) = lengthField(message, at: 1) else { return nil }
        let opStart = 1 + header + id.count
        guard let (_, opHeader) = lengthField(message, at: opStart + 1) else { return nil }
        var at = opStart + 1 + opHeader
        guard at + 2 < message.count, message[at] == 0x02 else { return nil }
        at += 2 + Int(message[at + 1])
        guard at + 1 < message.count, message[at] == 0x04, let (length, header) = lengthField(message, at: at + 1),
              at + 1 + header + length <= message.count else { return nil }
        let start = at + 1 + header
        return String(decoding: message[start..<start + length], as: UTF8.self)
    }

    static func encodeLength(_ n: Int) -> [UInt8] {
        if n < 0x80 { return [UInt8(n)] }
        if n < 0x100 { return [0x81, UInt8(n)] }
        return [0x82, UInt8(n >> 8), UInt8(n & 0xFF)]
    }

    static func tlv(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        [tag] + encodeLength(content.count) + content
    }

    /// An LDAPResult of type `responseTag` for the message `id`, with referral URLs.
    static func result(id: [UInt8], responseTag: UInt8, code: UInt8, referrals: [String] = []) -> [UInt8] {
        var body = tlv(0x0A, [code]) + tlv(0x04, []) + tlv(0x04, [])
        if !referrals.isEmpty {
            body += tlv(0xA3, referrals.flatMap { tlv(0x04, Array($0.utf8)) })
        }
        return tlv(0x30, id + tlv(responseTag, body))
    }

    /// The response tag for a request tag: bind 0x60 -> 0x61, search 0x63 -> done 0x65,
    /// modify 0x66 -> 0x67, add 0x68 -> 0x69, delete 0x4A -> 0x6B, modDN 0x6C -> 0x6D,
    /// compare 0x6E -> 0x6F, extended 0x77 -> 0x78; nil for unbind and abandon.
    static func responseTag(for request: UInt8) -> UInt8? {
        switch request {
        case 0x60: 0x61
        case 0x63: 0x65
        case 0x66: 0x67
        case 0x68: 0x69
        case 0x4A: 0x6B
        case 0x6C: 0x6D
        case 0x6E: 0x6F
        case 0x77: 0x78
        default: nil
        }
    }

    static let writeRequests: Set<UInt8> = [0x66, 0x68, 0x4A, 0x6C]
}

// MARK: - Sockets

enum LoopbackSocket {
    /// A listening TCP socket on `address` ("127.0.0.1" or "::1"), port chosen by the
    /// kernel; (fd, port).
    static func listen(address: String) throws -> (Int32, Int) {
        let v6 = address.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestDirectory.Failure("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var port = 0
        if v6 {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            _ = inet_pton(AF_INET6, address, &sa.sin6_addr)
            let rc = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
            guard rc == 0 else { close(fd); throw TestDirectory.Failure("bind \(address): \(String(cString: strerror(errno)))") }
            var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            _ = withUnsafeMutablePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            port = Int(UInt16(bigEndian: sa.sin6_port))
        } else {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            _ = inet_pton(AF_INET, address, &sa.sin_addr)
            let rc = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard rc == 0 else { close(fd); throw TestDirectory.Failure("bind \(address): \(String(cString: strerror(errno)))") }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            port = Int(UInt16(bigEndian: sa.sin_port))
        }
        guard Glibc.listen(fd, 16) == 0 else { close(fd); throw TestDirectory.Failure("listen: \(String(cString: strerror(errno)))") }
        return (fd, port)
    }

    static func connect(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = in_port_t(UInt16(port)).bigEndian
        _ = inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr)
        let rc = withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 { close(fd); return nil }
        return fd
    }

    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    /// A proxy's accept loop on a thread of its own, until `listener` is shut down (then
    /// closed here, after the last accept): each client is connected to `upstreamPort`,
    /// and `serve` starts the two pumps of the pair.
    static func proxy(listener: ListeningSocket, upstreamPort: Int, sockets: SocketSet,
                      serve: @escaping @Sendable (_ client: Int32, _ server: Int32, _ pair: SocketPair) -> Void) {
        Thread {
            while true {
                let client = accept(listener.fd, nil, nil)
                if client < 0 {
                    if errno == EINTR { continue }
                    listener.close()
                    return
                }
                guard let server = LoopbackSocket.connect(port: upstreamPort) else {
                    close(client)
                    continue
                }
                sockets.add(client)
                sockets.add(server)
                serve(client, server, SocketPair(client, server, in: sockets))
            }
        }.start()
    }

    /// Reads whole LDAP messages from `fd` until it closes, handing each to `body`.
    static func messages(_ fd: Int32, _ body: ([UInt8]) -> Bool) {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            buffer += chunk[0..<n]
            while let length = LDAPWire.messageLength(buffer) {
                if length < 0 { return }
                let message = Array(buffer[0..<length])
                buffer.removeFirst(length)
                if !body(message) { return }
            }
        }
    }
}

/// The sockets a stand-in has open. Closing goes through here, under the lock, so that
/// `shutdownAll` never touches a descriptor number the process has since reused (another
/// test's LDAP connection).
final class SocketSet: @unchecked Sendable {
    // @unchecked: `fds` is only touched while holding `lock`.
    private let lock = NSLock()
    private var fds: Set<Int32> = []
    func add(_ fd: Int32) { lock.lock(); fds.insert(fd); lock.unlock() }
    func close(_ fd: Int32) {
        lock.lock()
        if fds.remove(fd) != nil { Glibc.close(fd) }
        lock.unlock()
    }
    func shutdownAll() {
        lock.lock()
        for fd in fds { shutdown(fd, Int32(SHUT_RDWR)) }
        lock.unlock()
    }
}

/// A listening socket shared by an accept loop and the `stop()` of its test server or proxy:
/// shut down at most once, closed once (by the accept loop, after its last accept), and
/// never touched after that, so a second `stop()` (a `defer` after an explicit one) never
/// shuts down whatever socket has since been given the descriptor's number: another test's
/// LDAP connection, which then failed with "Can't contact LDAP server".
final class ListeningSocket: @unchecked Sendable {
    // @unchecked: `state` is only touched while holding `lock`.
    let fd: Int32
    private let lock = NSLock()
    private var state = State.listening

    private enum State { case listening, shutDown, closed }

    init(_ fd: Int32) { self.fd = fd }

    func shutDown() {
        lock.lock()
        if state == .listening {
            shutdown(fd, Int32(SHUT_RDWR))
            state = .shutDown
        }
        lock.unlock()
    }

    func close() {
        lock.lock()
        if state != .closed {
            Glibc.close(fd)
            state = .closed
        }
        lock.unlock()
    }
}

/// Two sockets pumped by two threads: the first thread to finish shuts both down (so the
/// other's read ends), the second closes them (so no descriptor is closed while in use).
final class SocketPair: @unchecked Sendable {
    // @unchecked: `remaining` is only touched while holding `lock`.
    private let lock = NSLock()
    private var remaining = 2
    let a: Int32, b: Int32
    let sockets: SocketSet
    init(_ a: Int32, _ b: Int32, in sockets: SocketSet) { self.a = a; self.b = b; self.sockets = sockets }
    func finished() {
        lock.lock()
        remaining -= 1
        let last = remaining == 0
        // Both still open here: the second caller closes them only after this.
        if !last {
            shutdown(a, Int32(SHUT_RDWR))
            shutdown(b, Int32(SHUT_RDWR))
        }
        lock.unlock()
        if last {
            sockets.close(a)
            sockets.close(b)
        }
    }
}

// MARK: - The fake server

/// A fake LDAP server on a loopback port: counts connections, records bind DNs and
/// request types. `answering` makes it reply success to everything (as a server that
/// captures a password would); otherwise it never replies (a server that hangs).
final class FakeLDAPServer: @unchecked Sendable {
    // @unchecked: the counters are only touched while holding `lock`.
    let address: String
    let port: Int
    private let listener: ListeningSocket
    private let lock = NSLock()
    private var connectionCount = 0
    private var bindNames: [String] = []
    private var requestTags: [UInt8] = []
    private let sockets = SocketSet()

    init(address: String = "127.0.0.1", answering: Bool = true) throws {
        self.address = address
        let (fd, port) = try LoopbackSocket.listen(address: address)
        (self.listener, self.port) = (ListeningSocket(fd), port)
        let listener = self.listener
        let thread = Thread { [self] in
            while true {
                let fd = accept(listener.fd, nil, nil)
                if fd < 0 {
                    if errno == EINTR { continue }
                    listener.close()  // stopped: closed here, after the last accept
                    return
                }
                self.sockets.add(fd)
                self.lock.lock()
                self.connectionCount += 1
                self.lock.unlock()
                Thread { [self] in
                    LoopbackSocket.messages(fd) { message in
                        guard let (id, operation) = LDAPWire.idAndOperation(message) else { return false }
                        self.lock.lock()
                        self.requestTags.append(operation)
                        if let name = LDAPWire.bindName(message) { self.bindNames.append(name) }
                        self.lock.unlock()
                        guard answering else { return true }
                        guard let tag = LDAPWire.responseTag(for: operation) else { return operation != 0x42 }
                        return LoopbackSocket.sendAll(fd, LDAPWire.result(id: id, responseTag: tag, code: 0))
                    }
                    self.sockets.close(fd)
                }.start()
            }
        }
        thread.start()
    }

    /// `ldap://127.0.0.1:PORT` or `ldap://[::1]:PORT`.
    var uri: String { "ldap://" + (address.contains(":") ? "[\(address)]" : address) + ":\(port)" }

    var connections: Int { lock.lock(); defer { lock.unlock() }; return connectionCount }
    var binds: [String] { lock.lock(); defer { lock.unlock() }; return bindNames }
    var requests: [UInt8] { lock.lock(); defer { lock.unlock() }; return requestTags }

    /// Wakes the accept loop (which closes the listener) and ends every connection.
    func stop() {
        listener.shutDown()
        sockets.shutdownAll()
    }
}

// MARK: - The referring proxy

/// A proxy on a loopback port in front of a real server: binds, searches and everything
/// else pass through untouched; every write (modify, add, delete, rename) is answered by
/// the proxy itself with referral (10) carrying `referrals`, and never reaches the server.
final class ReferringProxy: @unchecked Sendable {
    // @unchecked: `referralList` and `writes` are only touched while holding `lock`.
    let port: Int
    private let listener: ListeningSocket
    private let lock = NSLock()
    private var referralList: [String]
    private var writeCount = 0
    private let sockets = SocketSet()

    /// `passThrough`: writes whose bytes contain it go to the server all the same (the
    /// tests let the run's lease through, so that its writes meet the referral).
    init(upstreamPort: Int, referrals: [String], passThrough: String? = nil) throws {
        referralList = referrals
        let passBytes = passThrough.map { Array($0.utf8) }
        let (fd, port) = try LoopbackSocket.listen(address: "127.0.0.1")
        (listener, self.port) = (ListeningSocket(fd), port)
        LoopbackSocket.proxy(listener: listener, upstreamPort: upstreamPort, sockets: sockets) { [self] client, server, pair in
            let clientLock = NSLock()  // whole messages only, from either direction
            Thread {
                LoopbackSocket.messages(server) { message in
                    clientLock.lock()
                    defer { clientLock.unlock() }
                    return LoopbackSocket.sendAll(client, message)
                }
                pair.finished()
            }.start()
            Thread { [self] in
                LoopbackSocket.messages(client) { message in
                    let passes = passBytes.map { bytes in
                        message.indices.contains { i in message[i...].starts(with: bytes) }
                    } ?? false
                    if !passes, let (id, operation) = LDAPWire.idAndOperation(message),
                       LDAPWire.writeRequests.contains(operation), let tag = LDAPWire.responseTag(for: operation) {
                        self.lock.lock()
                        self.writeCount += 1
                        let referrals = self.referralList
                        self.lock.unlock()
                        clientLock.lock()
                        defer { clientLock.unlock() }
                        return LoopbackSocket.sendAll(client, LDAPWire.result(id: id, responseTag: tag, code: 10, referrals: referrals))
                    }
                    return LoopbackSocket.sendAll(server, message)
                }
                pair.finished()
            }.start()
        }
    }

    var uri: String { "ldap://127.0.0.1:\(port)" }

    var referrals: [String] {
        get { lock.lock(); defer { lock.unlock() }; return referralList }
        set { lock.lock(); referralList = newValue; lock.unlock() }
    }

    /// Writes the proxy answered with a referral.
    var writes: Int { lock.lock(); defer { lock.unlock() }; return writeCount }

    /// Wakes the accept loop (which closes the listener) and ends every connection.
    func stop() {
        listener.shutDown()
        sockets.shutdownAll()
    }
}

// MARK: - The holding proxy

/// A proxy on a loopback port in front of a real server that passes everything through,
/// except that a request the test picks (`hold`) waits in the proxy, with every later
/// request of its connection, until `release()`; `stop()` drops what waits (it never
/// reaches the server). Lets a test pause a run at an exact point of its conversation.
final class HoldingProxy: @unchecked Sendable {
    // @unchecked: `open`, `stopped` and `heldCount` are only touched while holding `gate`.
    let port: Int
    private let listener: ListeningSocket
    private let gate = NSCondition()
    private var open = false
    private var stopped = false
    private var heldCount = 0
    private let sockets = SocketSet()

    /// `hold(request)`: true for a request (a whole LDAPMessage) that must wait.
    init(upstreamPort: Int, hold: @escaping @Sendable ([UInt8]) -> Bool) throws {
        let (fd, port) = try LoopbackSocket.listen(address: "127.0.0.1")
        (listener, self.port) = (ListeningSocket(fd), port)
        LoopbackSocket.proxy(listener: listener, upstreamPort: upstreamPort, sockets: sockets) { [self] client, server, pair in
            Thread {
                LoopbackSocket.messages(server) { LoopbackSocket.sendAll(client, $0) }
                pair.finished()
            }.start()
            Thread { [self] in
                LoopbackSocket.messages(client) { message in
                    if hold(message), !self.waitForRelease() { return false }
                    return LoopbackSocket.sendAll(server, message)
                }
                pair.finished()
            }.start()
        }
    }

    /// Counts the held request and waits until released (true) or stopped (false).
    private func waitForRelease() -> Bool {
        gate.lock()
        defer { gate.unlock() }
        heldCount += 1
        gate.broadcast()
        // A test that forgets to release or stop the proxy must not leave this thread
        // waiting for ever: after two minutes a held request is dropped as if stopped.
        let deadline = Date().addingTimeInterval(120)
        while !open && !stopped {
            if !gate.wait(until: deadline) { return false }
        }
        return !stopped
    }

    var uri: String { "ldap://127.0.0.1:\(port)" }

    /// Requests that were held (waiting now or released since).
    var held: Int { gate.lock(); defer { gate.unlock() }; return heldCount }

    /// Lets every held request through, and all later ones.
    func release() {
        gate.lock()
        open = true
        gate.broadcast()
        gate.unlock()
    }

    /// Drops held requests, wakes the accept loop (which closes the listener) and ends
    /// every connection.
    func stop() {
        gate.lock()
        stopped = true
        gate.broadcast()
        gate.unlock()
        listener.shutDown()
        sockets.shutdownAll()
    }
}
