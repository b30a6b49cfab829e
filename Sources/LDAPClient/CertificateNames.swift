// The names an X.509 certificate is valid for: subject common names and the
// subjectAltName extension's DNS names and IP addresses (RFC 5280 4.1, 4.2.1.6), read
// from DER with a small walker. Used by doctor to say which host a certificate names.

public struct CertificateNames: Sendable, Hashable {
    public var commonNames: [String] = []
    public var dnsNames: [String] = []
    public var ipAddresses: [String] = []

    /// Every name, subjectAltName first (what TLS clients check), then common names not
    /// already listed.
    public var all: [String] {
        var out = dnsNames + ipAddresses
        for cn in commonNames where !out.contains(cn) { out.append(cn) }
        return out
    }

    /// Whether `host` matches a DNS name (a leading `*.` matches one label), an IP
    /// address, or, without subjectAltName DNS names, a common name. ASCII case ignored.
    public func matches(host: String) -> Bool {
        let host = host.lowercased()
        if ipAddresses.contains(host) { return true }
        let candidates = dnsNames.isEmpty ? commonNames : dnsNames
        for name in candidates.map({ $0.lowercased() }) {
            if name == host { return true }
            if name.hasPrefix("*."), let dot = host.firstIndex(of: "."), host[host.index(after: dot)...] == name.dropFirst(2),
               host[..<dot].count > 0 { return true }
        }
        return false
    }

    /// Parses a DER certificate; nil when it is not one.
    public init?(der: [UInt8]) {
        var reader = DERReader(der[...])
        guard let certificate = reader.next(), certificate.tag == 0x30 else { return nil }
        var cert = DERReader(certificate.value)
        guard let tbs = cert.next(), tbs.tag == 0x30 else { return nil }
        var fields = DERReader(tbs.value)
        var items: [DERReader.Item] = []
        while let item = fields.next() { items.append(item) }
        // [0] version is optional: serial, signature, issuer, validity, subject follow.
        let offset = items.first?.tag == 0xA0 ? 1 : 0
        guard items.count >= offset + 6 else { return nil }
        commonNames = Self.commonNames(in: items[offset + 4].value)
        for item in items[(offset + 6)...] where item.tag == 0xA3 {
            var outer = DERReader(item.value)
            guard let extensions = outer.next(), extensions.tag == 0x30 else { continue }
            var list = DERReader(extensions.value)
            while let ext = list.next() {
                var parts = DERReader(ext.value)
                guard let oid = parts.next(), oid.tag == 0x06, Array(oid.value) == [0x55, 0x1D, 0x11] else { continue }
                var value = parts.next()
                if value?.tag == 0x01 { value = parts.next() } // critical
                guard let octets = value, octets.tag == 0x04 else { continue }
                var inner = DERReader(octets.value)
                guard let names = inner.next(), names.tag == 0x30 else { continue }
                var general = DERReader(names.value)
                while let name = general.next() {
                    switch name.tag {
                    case 0x82: dnsNames.append(String(decoding: name.value, as: UTF8.self))
                    case 0x87: if let ip = Self.ipText(Array(name.value)) { ipAddresses.append(ip) }
                    default: break
                    }
                }
            }
        }
    }

    private static func commonNames(in name: ArraySlice<UInt8>) -> [String] {
        var out: [String] = []
        var rdns = DERReader(name)
        while let rdn = rdns.next() {
            var set = DERReader(rdn.value)
            while let ava = set.next() {
                var parts = DERReader(ava.value)
                guard let oid = parts.next(), Array(oid.value) == [0x55, 0x04, 0x03], let value = parts.next() else { continue }
                out.append(String(decoding: value.value, as: UTF8.self))
            }
        }
        return out
    }

    private static func ipText(_ bytes: [UInt8]) -> String? {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        if bytes.count == 16 {
            var groups: [String] = []
            for i in stride(from: 0, to: 16, by: 2) {
                groups.append(String(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]), radix: 16))
            }
            return groups.joined(separator: ":")
        }
        return nil
    }
}

/// Reads DER TLVs one after another (definite lengths only, as DER requires).
struct DERReader {
    struct Item {
        var tag: UInt8
        var value: ArraySlice<UInt8>
    }

    private var data: ArraySlice<UInt8>

    init(_ data: ArraySlice<UInt8>) { self.data = data }

    mutating func next() -> Item? {
        guard data.count >= 2 else { return nil }
        var index = data.startIndex
        let tag = data[index]
        guard tag & 0x1F != 0x1F else { return nil } // multi-byte tags: not in certificates' names
        index += 1
        var length = Int(data[index])
        index += 1
        if length & 0x80 != 0 {
            let count = length & 0x7F
            guard count >= 1, count <= 4, data.endIndex - index >= count else { return nil }
            length = 0
            for _ in 0..<count {
                length = length << 8 | Int(data[index])
                index += 1
            }
        }
        guard data.endIndex - index >= length else { return nil }
        let value = data[index..<(index + length)]
        data = data[(index + length)...]
        return Item(tag: tag, value: value)
    }
}
